#!/usr/bin/env bash
# GPU benchmark: batch-1 chunk latency (eager / compiled / CUDA graphs, fp32 / bf16), training steps/s (low-dim and
# image), image windows/s from disk, and the inference server's overhead and throughput with batching under 1, 4
# and 16 clients. Writes JSON files into OUT. Needs no network; the parts are capped at 7 minutes together
# (each has a timeout), plus a one-time wheel install when no CUDA torch is present.
#
#   bash bench/gpu.sh OUT            # e.g. bash bench/gpu.sh docs/results/gpu
#
# Python: the first of $PYTHON, python3.12, python3 that imports torch with CUDA is used as is. Otherwise the
# script makes a venv (.venv-gpu) and installs the wheels of the folder .whl (no index). Fill .whl on a machine
# with internet, from the repository root (the GPU machine runs Python 3.12 on x86_64 Linux):
#
#   pip download --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     --platform any -d .whl \
#     torch==2.13.0 "diffusers>=0.30" "safetensors>=0.4" "einops>=0.7" "numpy>=1.24" "pydantic>=2.5" \
#     "pyyaml>=6" "msgpack>=1.0" "websockets>=13" "tqdm>=4.60" "zarr>=3.1,<3.2" "numcodecs>=0.16,<0.17"
#
# (.whl is git-ignored; torch's CUDA wheels come with their nvidia-* dependencies, a few GB.) manip itself is not
# installed: the script links the repository's folders under their import names (setup.py's table) in a
# temporary folder on PYTHONPATH.
set -euo pipefail

OUT=${1:?usage: bash bench/gpu.sh OUT}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
START=$SECONDS

has_cuda_torch() { "$1" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; }

PY=""
for candidate in ${PYTHON:-} python3.12 python3; do
  if command -v "$candidate" >/dev/null && has_cuda_torch "$candidate"; then PY=$(command -v "$candidate"); break; fi
done
if [[ -z $PY ]]; then
  if [[ ! -d $ROOT/.whl ]]; then
    echo "bench/gpu.sh: no Python with CUDA torch and no $ROOT/.whl folder of wheels (see the top of this script)" >&2
    exit 2
  fi
  BASE=$(command -v python3.12 || command -v python3)
  [[ -x $ROOT/.venv-gpu/bin/python ]] || "$BASE" -m venv "$ROOT/.venv-gpu"
  "$ROOT/.venv-gpu/bin/pip" install -q --no-index --find-links "$ROOT/.whl" \
    torch diffusers safetensors einops numpy pydantic pyyaml msgpack websockets tqdm zarr numcodecs
  PY=$ROOT/.venv-gpu/bin/python
  has_cuda_torch "$PY" || { echo "bench/gpu.sh: torch in .venv-gpu does not see CUDA" >&2; exit 2; }
fi
echo "python: $PY ($(( SECONDS - START )) s)" >&2

# manip's import names → the repository's folders (as setup.py maps them), without installing
PKG=$(mktemp -d)
trap 'rm -rf "$PKG"' EXIT
mkdir -p "$PKG/manip"
for pair in core:data/core cli:data/cli data:data policies:policies sim:sim real:real bench:bench; do
  ln -s "$ROOT/${pair#*:}" "$PKG/manip/${pair%%:*}"
done
export PYTHONPATH=$PKG${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1

run() {  # run LIMIT_S NAME CMD...: a part that fails or runs out of time is reported, the others still run
  local limit=$1 name=$2; shift 2
  echo "== $name (limit ${limit} s, at $(( SECONDS - START )) s)" >&2
  if ! timeout "$limit" "$@"; then echo "== $name: failed or timed out" >&2; echo "$name" >>"$OUT/failed.txt"; fi
}

run 20 checkpoint "$PY" -m manip.bench.gpu "$OUT" --only checkpoint
run 170 latency "$PY" -m manip.bench.gpu "$OUT" --only latency
run 100 training "$PY" -m manip.bench.gpu "$OUT" --only training
run 55 server-synthetic "$PY" -m manip.cli.main bench server --json --out "$OUT/server_synthetic.json" \
  --requests 200 --seconds 2 --model-ms 5
run 65 server-checkpoint "$PY" -m manip.cli.main bench server --json --out "$OUT/server_checkpoint.json" \
  --requests 200 --seconds 2 --checkpoint "$OUT/checkpoint"
echo "done in $(( SECONDS - START )) s; JSON in $OUT" >&2
