#!/usr/bin/env bash
# Installs every Debian 12 package clipcap needs (if missing) and builds it into build/.
# Usage: scripts/setup.sh [--no-build | TARGET...]
#   TARGET...: build only these CMake targets (scripts/demo.sh builds the four executables only);
#   none: everything, tests and benchmarks included (scripts/test.sh). CLIPCAP_BUILD_DIR overrides build/.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config ccache
  libtorch-dev                 # libtorch 1.13.1, CPU
  libgloo-dev                  # headers c10d's ProcessGroupGloo includes (distributed training)
  libcpp-httplib-dev           # clipcap-serve's HTTP server
  curl                         # the server's tests talk to it with curl
  libdnnl-dev                  # headers of the oneDNN libtorch runs on: clipcap calls it directly
  libopenblas0-openmp          # libtorch uses the system BLAS: reference BLAS is ~60x slower
  libopencv-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
  libsentencepiece-dev
  nlohmann-json3-dev libcli11-dev libgtest-dev libicu-dev
  python3-torch python3-pil python3-numpy python3-opencv   # benchmarks' Python baselines, emoji data script
  chromium                     # clipcap-eval's report is opened in a headless browser by its test
  clang libclang-rt-14-dev     # the sanitizer build and the fuzz targets (scripts/sanitize.sh)
)
# The emoji data comes from npm packages; a machine may already have its own node + npm.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" = "--no-build" ] && exit 0

# Paths relative to the checkout in ccache's hash, so a fresh clone elsewhere (CI) hits the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
jobs=$(nproc 2>/dev/null || echo 2)
build="${CLIPCAP_BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build" -j"$jobs" "${targets[@]}"
