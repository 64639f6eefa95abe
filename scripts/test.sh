#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a passing test suite: install, build, run ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch_openai_client.sh > /dev/null  # the official OpenAI client the server's tests use (npm)
jobs=$(nproc 2>/dev/null || echo 2)
cd "${CLIPCAP_BUILD_DIR:-build}"
ctest -j"$jobs" --output-on-failure --timeout 600
