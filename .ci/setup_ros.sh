#!/usr/bin/env bash
# Make ./.venv-ros: unofficial rclpy wheels (ROS 2 Kilted, Fast DDS) + message packages + the light manip client,
# the Zarr recorder and the simulated robot (robosuite + MuJoCo, no torch), for tests that run the real ROS nodes
# here. Labs use their own ROS install instead (see README "Real robot"). Idempotent: a stamp of the inputs makes
# a second run a no-op.
# The wheels' .pth re-launches Python with LD_LIBRARY_PATH set, which is why this venv stays separate from .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MANIP_ROS_VENV:-$(pwd)/.venv-ros}
source .ci/python.sh  # PYTHON: python3, or python3.11 where python3 is 3.10 (zarr 3.1 needs 3.11)
[ ${#apt_missing[@]} -eq 0 ] || { echo "setup_ros.sh: run bash .ci/setup.sh --ros (needs apt: ${apt_missing[*]})" >&2; exit 2; }
stamp=$(cat .ci/setup_ros.sh .ci/python.sh pyproject.toml setup.py .ci/constraints.txt | sha256sum | cut -c1-16)
if [ -f "$venv/.manip-stamp-$stamp" ]; then echo "[setup] $venv is up to date" >&2; exit 0; fi
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
py="$venv/bin/python"
pip_quiet=(-q --disable-pip-version-check -c .ci/constraints.txt)
# Fast DDS only (the [fastrtps] extra); no launch/launch_ros/ros2 CLI (not published as wheels).
pkgs=("ros-rclpy[fastrtps]==9.1.2" ros-sensor-msgs ros-std-msgs ros-trajectory-msgs ros-std-srvs
  ros-diagnostic-msgs ros-geometry-msgs)
echo "[setup] pip (ROS venv): ${pkgs[*]}" >&2
"$py" -m pip install "${pip_quiet[@]}" "${pkgs[@]}" 2>&1 | grep -v 'is ignored' || true
# The light client (numpy, msgpack, websockets; no torch), zarr for the recorder node and manip[sim] (MuJoCo) for
# the simulated robot node; robosuite declares numpy<2 and GUI OpenCV, so it goes in --no-deps as in setup.sh.
"$py" -m pip install "${pip_quiet[@]}" -e ".[client,data,sim]" 2>&1 | grep -v 'is ignored' || true
"$py" -m pip install "${pip_quiet[@]}" --no-deps robosuite==1.5.2 2>&1 | grep -v 'is ignored' || true
env ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST MUJOCO_GL=egl "$py" -c 'import rclpy, sensor_msgs.msg, trajectory_msgs.msg, std_srvs.srv, diagnostic_msgs.msg, geometry_msgs.msg, zarr, manip.real.client, manip.data; from manip.sim.render import import_robosuite; import_robosuite()' \
  || { echo "setup_ros.sh: the ROS venv install did not complete (see the pip output above)" >&2; exit 1; }
rm -f "$venv"/.manip-stamp-*
touch "$venv/.manip-stamp-$stamp"
echo "[setup] ready: $venv" >&2
