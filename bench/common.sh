# Shared by bench/run_*_bench.sh (sourced): the Python that has torch, and the lines every result
# file carries so a ratio can be judged by the load it was measured under.
#   note EVENT      appends {"event", "loadavg", "time"} to the file named by $raw
#   machine         "CPU model, N cores, OpenBLAS kernels: X"
export BENCH_DIR="$here"  # bench_report.py, for the reports' Python
py=/usr/bin/python3  # Debian's, with python3-torch (a pyenv python3 may come first on PATH)
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
load() { cut -d' ' -f1-3 /proc/loadavg; }
note() { echo "{\"event\": \"$1\", \"loadavg\": \"$(load)\", \"time\": \"$(date -u +%FT%TZ)\"}" >> "$raw"; }
machine() { echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(getconf _NPROCESSORS_ONLN) cores, $(blas)"; }
# The OpenBLAS kernels both sides run (OPENBLAS_CORETYPE, where the machine sets it, applies to both).
blas() { echo "OpenBLAS kernels: $(OPENBLAS_VERBOSE=2 "$py" -c 'import torch; torch.ones(2, 2) @ torch.ones(2, 2)' 2>&1 | sed -n 's/^Core: //p' | head -1)"; }
