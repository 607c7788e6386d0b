# Sourced by setup.sh and setup_ros.sh: pick the interpreter for the venvs into $PYTHON (exported).
# manip[data] pins zarr 3.1, which needs Python >= 3.11. Where the given Python is 3.10 (Ubuntu 22.04's
# python3), use python3.11 instead; apt_missing gets the apt packages that provide it when it is not installed.
PYTHON=${PYTHON:-python3}
apt_missing=()
python_at_least() { "$1" -c "import sys; sys.exit(0 if sys.version_info >= ($2) else 1)" 2>/dev/null; }
if ! python_at_least "$PYTHON" "3, 11"; then
  if ! python_at_least "$PYTHON" "3, 10"; then
    echo "setup: $PYTHON is $("$PYTHON" -V 2>/dev/null || echo "not found"); manip needs Python >= 3.10 (set PYTHON=...)" >&2
    exit 2
  fi
  printf '[setup] %s\n' "$PYTHON is $("$PYTHON" -V 2>&1); zarr 3.1 needs Python >= 3.11: using python3.11" >&2
  PYTHON=python3.11
  command -v python3.11 >/dev/null 2>&1 || apt_missing+=(python3.11 python3.11-venv)
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
  case "${PYTHON##*/}" in
    python3.[0-9]*) apt_missing+=("${PYTHON##*/}-venv") ;;
    *) apt_missing+=(python3-venv) ;;
  esac
fi
export PYTHON
