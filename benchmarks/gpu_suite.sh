#!/usr/bin/env bash
# Every GPU benchmark in one command, sized for one 10-minute call on a lent GPU machine (whose
# python3 has a CUDA torch, transformers, peft and accelerate but no diffusers):
#
#   bash benchmarks/gpu_suite.sh --fetch-wheels   # here, with the package registry: the wheels
#                                                 # the GPU machine lacks, into .whl/ (ignored)
#   bash benchmarks/gpu_suite.sh                  # there: sample.py (released size), sample.py
#                                                 # --micro (the turbo ratio), train_step.py;
#                                                 # results and the log in $OUT (else
#                                                 # benchmarks/results)
#   bash benchmarks/gpu_suite.sh --tiny           # a CPU smoke run of the same steps, unrecorded
#
# Each step has its own time limit, so a slow one cannot take the others' time; the results
# file (<card>.json) is written by each script as it finishes.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fetch-wheels" ]; then
    version=$(python3 -c "import diffusers; print(diffusers.__version__)") || {
        echo "gpu_suite: diffusers is not installed here — activate the project's venv" >&2
        exit 2; }
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d .whl "diffusers==$version" importlib_metadata zipp || exit 1
    ls -l .whl
    exit 0
fi

tiny=()
[ "${1:-}" = "--tiny" ] && tiny=(--tiny)
out=${OUT:-benchmarks/results}
[ ${#tiny[@]} = 1 ] && [ -z "${OUT:-}" ] && out=$(mktemp -d)  # a smoke run records nothing
mkdir -p "$out"
log="$out/gpu_suite.log"
if compgen -G ".whl/*.whl" >/dev/null; then
    site=$(mktemp -d)
    trap 'rm -rf "$site"' EXIT
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
        .whl/*.whl || exit 1
    export PYTHONPATH="$site"
fi
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 FRAMERTURBO_CPU_CHECK=0
py=${PYTHON:-python3}

failed=0
step() {  # step SECONDS SCRIPT ARGS…: one benchmark under its own limit, its output in the log
    local limit=$1
    shift
    echo "== $* (limit ${limit} s)" | tee -a "$log"
    timeout "$limit" "$py" "$@" --out "$out" "${tiny[@]}" 2>&1 | tee -a "$log"
    local code=${PIPESTATUS[0]}
    echo "== exit $code" | tee -a "$log"
    [ "$code" = 0 ] || failed=1
}

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } \
    | tee "$log"
step 200 benchmarks/sample.py --repeats 3
[ ${#tiny[@]} = 0 ] && step 100 benchmarks/sample.py --micro --repeats 5
step 280 benchmarks/train_step.py --steps 3
exit $failed
