#!/usr/bin/env bash
# Make ./.venv-ros: unofficial rclpy wheels (Fast DDS) + message packages + the light manip client, for tests
# that run the real ROS node here. Labs use their own ROS install instead (see README "Real robot").
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MANIP_ROS_VENV:-$(pwd)/.venv-ros}
PYTHON=${PYTHON:-python3}
stamp=$(cat .ci/setup_ros.sh pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$venv/.manip-stamp-$stamp" ]; then echo "[setup] $venv is up to date" >&2; exit 0; fi
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
py="$venv/bin/python"
pkgs=(ros-rclpy ros-sensor-msgs ros-std-msgs ros-trajectory-msgs ros-std-srvs ros-diagnostic-msgs ros-geometry-msgs)
echo "[setup] pip (ROS venv): ${pkgs[*]}" >&2
"$py" -m pip install -q --disable-pip-version-check "${pkgs[@]}" 2>&1 | grep -v 'is ignored' || true
# The light client only: numpy, msgpack, websockets (no torch), exactly what a ROS machine installs.
"$py" -m pip install -q --disable-pip-version-check -e ".[client]" 2>&1 | grep -v 'is ignored' || true
rm -f "$venv"/.manip-stamp-*
touch "$venv/.manip-stamp-$stamp"
