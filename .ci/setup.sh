#!/usr/bin/env bash
# Install everything manip needs into ./.venv (idempotent: a second run reuses what is installed).
#   bash .ci/setup.sh            runtime: apt libraries, torch (pinned), manip[all], robosuite
#   bash .ci/setup.sh --ros      also the ROS 2 test venv ./.venv-ros (unofficial rclpy wheels from PyPI)
# Environment: PYTHON (interpreter, default python3, must be >= 3.10), MANIP_VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
want_ros=0
for arg in "$@"; do
  case "$arg" in
    --ros) want_ros=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*" >&2; }

# 1. System libraries: headless GL for MuJoCo (EGL/OSMesa), libusb for librealsense, ffmpeg for videos,
#    Xvfb + xdotool for the teleop tests (a virtual display and real key events), Chromium for the HTML page tests.
apt_pkgs=(libosmesa6 libegl1 libgl1-mesa-dri libglx-mesa0 libusb-1.0-0 ffmpeg xvfb xdotool chromium)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
source .ci/python.sh  # PYTHON: python3, or python3.11 where python3 is 3.10 (zarr 3.1 needs 3.11)
missing+=("${apt_missing[@]}")
"$PYTHON" -c 'import tkinter' 2>/dev/null || missing+=("${PYTHON##*/}-tk")  # Tk: the teleop viewer window
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python_at_least "$PYTHON" "3, 11" \
  || { echo "setup.sh: $PYTHON is $("$PYTHON" -V 2>&1); manip[data] needs Python >= 3.11 (set PYTHON=...)" >&2; exit 2; }

# 2. The project venv. A stamp of the inputs makes a second run a no-op.
venv=${MANIP_VENV:-$root/.venv}
pip_quiet=(-q --disable-pip-version-check)
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp=$(stamp_of pyproject.toml setup.py .ci/constraints.txt .ci/setup.sh .ci/python.sh)
if [ ! -f "$venv/.manip-stamp-$stamp" ]; then
  [ -x "$venv/bin/python" ] || { say "creating $venv"; "$PYTHON" -m venv "$venv"; }
  py="$venv/bin/python"
  "$py" -m pip install "${pip_quiet[@]}" --upgrade pip setuptools wheel 2>&1 | grep -v 'is ignored' || true
  say "pip: torch (pinned first), then manip[all] and robosuite"
  "$py" -m pip install "${pip_quiet[@]}" -c .ci/constraints.txt torch==2.13.0 2>&1 | grep -v 'is ignored' || true
  "$py" -m pip install "${pip_quiet[@]}" -c .ci/constraints.txt -e ".[all]" 2>&1 | grep -v 'is ignored' || true
  # robosuite declares numpy<2 and GUI OpenCV; its real needs are in manip[sim].
  "$py" -m pip install "${pip_quiet[@]}" -c .ci/constraints.txt --no-deps robosuite==1.5.2 2>&1 | grep -v 'is ignored' || true
  # Meta-World declares mujoco==3.3.0; it runs on 3.9.0. Its real needs (gymnasium, packaging, imageio) are in manip[metaworld].
  "$py" -m pip install "${pip_quiet[@]}" -c .ci/constraints.txt --no-deps metaworld==3.1.1 2>&1 | grep -v 'is ignored' || true
  "$py" -c 'import torch, zarr, manip.data, manip.policies, manip.real; from manip.sim.render import import_robosuite; import_robosuite(); import metaworld.policies' \
    || { echo "setup.sh: the install did not complete (see the pip output above)" >&2; exit 1; }
  rm -f "$venv"/.manip-stamp-*
  touch "$venv/.manip-stamp-$stamp"
else
  say "$venv is up to date"
fi

# 3. Optional: the ROS 2 venv for the ROS tests (its .pth re-launches Python, so it stays separate).
if [ "$want_ros" -eq 1 ]; then
  bash .ci/setup_ros.sh
fi
say "ready: $venv/bin/manip"
