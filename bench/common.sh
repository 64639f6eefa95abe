# Shared by bench/run_*_bench.sh (sourced after setting $here): the Python that has torch, where the
# build is, and the lines every result file carries so a ratio can be judged by the load it was
# measured under.
#   bench_binary NAME [BUILD_DIR]   root, build (absolute) and bin=BUILD/bench/NAME, checked with the Python side
#   note EVENT      appends {"event", "loadavg", "time"} to the file named by $raw
#   machine         "CPU model, N cores, OpenBLAS kernels: X"
#   report KIND     runs the report's Python (stdin) on $raw, writing bench/results/KIND_<stamp>.{md,json};
#                   it starts with: from bench_report import start, write_report; rows, events, out, cmd, cpu, kernel = start()
py=/usr/bin/python3  # Debian's, with python3-torch (a pyenv python3 may come first on PATH)
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
load() { cut -d' ' -f1-3 /proc/loadavg; }
note() { echo "{\"event\": \"$1\", \"loadavg\": \"$(load)\", \"time\": \"$(date -u +%FT%TZ)\"}" >> "$raw"; }
machine() { echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(getconf _NPROCESSORS_ONLN) cores, $(blas)"; }
# The OpenBLAS kernels both sides run (OPENBLAS_CORETYPE, where the machine sets it, applies to both).
blas() { echo "OpenBLAS kernels: $(OPENBLAS_VERBOSE=2 "$py" -c 'import torch; torch.ones(2, 2) @ torch.ones(2, 2)' 2>&1 | sed -n 's/^Core: //p' | head -1)"; }

bench_binary() {
  root="$(dirname "$here")"
  build="${2:-build}"
  [[ "$build" = /* ]] || build="$root/$build"
  bin="$build/bench/$1"
  [[ -x "$bin" ]] || { echo "$(basename "$0"): $bin not found; build it: cmake --build $build --target $1 -j2" >&2; exit 1; }
  "$py" -c "import torch" 2>/dev/null || { echo "$(basename "$0"): $py has no torch (apt-get install python3-torch)" >&2; exit 1; }
}
report() { PYTHONPATH="$here" "$py" - "$raw" "$here/results/${1}_$stamp" "$cmd" "$(machine)" "$(uname -r)"; }
# serve_start LOG ARGS...: $build/clipcap-serve ARGS in the background, its stderr in LOG; returns
# once it says "ready:", with server_pid and port set.
serve_start() {
  local log=$1
  shift
  "$build/clipcap-serve" "$@" 2> "$log" > /dev/null &
  server_pid=$!
  for _ in $(seq 600); do
    grep -q "ready:" "$log" && break
    sleep 0.05
  done
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log")
}
