#!/usr/bin/env bash
# The sanitizer build: clang with AddressSanitizer + UndefinedBehaviorSanitizer (and libFuzzer's
# coverage) on the library, the tests and the fuzz targets, in build-sanitize/, then:
#   1. the fuzz targets over their committed corpora (also ctest -L fuzz in that build)
#   2. each fuzz target for FUZZ_SECONDS (default 20) from that corpus
#   3. the unit tests (ctest -L unit) but those that need SentencePiece: its plugin is dlopen'ed
#      with RTLD_DEEPBIND, which ASan refuses, so the sanitizer build does not build it
# Usage: scripts/sanitize.sh [--quick] [--merge]
#   --quick  1 and 2 only (CI: what fits its time)
#   --merge  after 2, add the inputs that reached new code to the committed corpora (minimised)
# Environment: CLIPCAP_SANITIZE_DIR (build-sanitize), FUZZ_SECONDS. The 10-minute runs of the docs:
#   FUZZ_SECONDS=600 scripts/sanitize.sh --quick --merge
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 merge=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --merge) merge=1 ;;
    *) echo "usage: scripts/sanitize.sh [--quick] [--merge]" >&2; exit 2 ;;
  esac
done

export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
build="${CLIPCAP_SANITIZE_DIR:-build-sanitize}"
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCLIPCAP_SANITIZE=ON -DCLIPCAP_BUILD_BENCH=OFF -DCLIPCAP_BUILD_TESTS=$([ $quick = 1 ] && echo OFF || echo ON) >/dev/null
if [ $quick = 1 ]; then
  cmake --build "$build" -j"$jobs" --target clipcap_fuzz
else
  cmake --build "$build" -j"$jobs" --target clipcap_fuzz --target clipcap_unit_tests
fi

# Stop at the first report; leak checking off: libtorch's and OpenCV's static registries are
# reachable-at-exit by design and are not clipcap's.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

echo "sanitize: fuzz corpora" >&2
for f in tests/fuzz/fuzz_*.cpp; do
  n=$(basename "$f" .cpp); t=${n#fuzz_}
  "$build/tests/fuzz/$n" -runs=0 "tests/fuzz/corpus/$t" 2>"$build/$n.corpus.log" ||
    { tail -40 "$build/$n.corpus.log" >&2; echo "sanitize: $n failed on its corpus" >&2; exit 1; }
done
seconds="${FUZZ_SECONDS:-20}"
echo "sanitize: each fuzz target for ${seconds}s" >&2
work="$build/fuzz-work"
for f in tests/fuzz/fuzz_*.cpp; do
  n=$(basename "$f" .cpp); t=${n#fuzz_}
  mkdir -p "$work/$t"
  # New inputs go to the work directory (first); the committed corpus is only read.
  if ! "$build/tests/fuzz/$n" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
      -artifact_prefix="$work/$n-" "$work/$t" "tests/fuzz/corpus/$t" 2>"$build/$n.log"; then
    tail -40 "$build/$n.log" >&2
    echo "sanitize: $n found a failing input: $work/$n-*" >&2
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE' "$build/$n.log" | sed "s/^/sanitize: $n /" >&2 || true
  if [ $merge = 1 ]; then
    # Edges only (no hit counters): a corpus of hundreds of inputs rather than thousands.
    "$build/tests/fuzz/$n" -merge=1 -use_counters=0 "tests/fuzz/corpus/$t" "$work/$t" 2>"$build/$n.merge.log"
    echo "sanitize: $n corpus now $(ls "tests/fuzz/corpus/$t" | wc -l) files" >&2
  fi
done
[ $quick = 1 ] && exit 0

echo "sanitize: unit tests" >&2
cd "$build"
# SentencePiece: the plugin is not built here (see above).
ctest -L unit -E SentencePiece -j"$jobs" --output-on-failure --timeout 1800
