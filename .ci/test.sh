#!/usr/bin/env bash
# Install everything (idempotent) and run the whole test suite plus ruff. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh --ros
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl} MANIP_NO_PROGRESS=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
