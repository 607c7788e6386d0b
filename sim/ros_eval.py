"""``manip eval --ros``: every episode through real processes on loopback ROS 2, and recording on the robot path.

Processes (all on 127.0.0.1; ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a ROS domain id of the run's own):

    manip serve --checkpoint CKPT --port 0        (this Python)
      ← policy_node   (the ROS Python: cartesian targets, the task's observation map, dry_run false)
      ←→ sim_robot    (the ROS Python + robosuite: the task at its control rate, headless)
      ← episode_driver (the ROS Python: seed → /sim_robot/reset → /policy_node/reset → /policy_node/enable →
                        until /task_success or the horizon → disable; one JSON line per episode)

This module never imports rclpy (the main venv has none): it writes parameter files, starts the nodes as
``python -m real.<node>`` with the ROS venv's Python (``MANIP_ROS_VENV``, default ``.venv-ros``) in the ROS
package folder (``MANIP_ROS_PACKAGE``, default ``ros_ws/src/real``), reads the driver's lines and writes
``results.json`` (the keys of ``manip eval`` plus a ``ros`` block). The node parameters come from the
package's ``config/sim/sim_robot.yaml``, ``config/sim/sim_policy.yaml`` and the observation map
``config/sim/sim_observation_map[_<Task>].yaml``, the files ``bringup.launch.py sim:=true`` uses. Logs of every
process go to ``OUT/ros_logs/``.

With the scripted expert (``--expert --ros``) no server or policy node runs: ``sim_robot``'s expert publishes
the commands (``/sim_robot/expert``). :func:`record_with_expert` records demonstrations the same way, with
``recorder_node`` writing a Zarr store from the live topics.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from manip.core.errors import ManipError
from manip.core.progress import progress
from manip.core.provenance import code_provenance
from manip.real.client.executor import MODES

REPO = Path(__file__).resolve().parents[1]
NODE_STOP_TIMEOUT_S = 10.0


# -- where the ROS side lives -------------------------------------------------------------------------------------
def ros_package() -> Path:
    """The ROS 2 package folder ``real`` (its Python module is ``real``)."""
    package = Path(os.environ.get("MANIP_ROS_PACKAGE") or REPO / "ros_ws" / "src" / "real")
    if not (package / "real" / "sim_robot_node.py").is_file():
        raise ManipError(f"{package}: no ROS package 'real' there (set MANIP_ROS_PACKAGE to ros_ws/src/real)")
    return package


def ros_python() -> Path:
    """The Python of the ROS venv (rclpy, robosuite; no torch)."""
    python = Path(os.environ.get("MANIP_ROS_VENV") or REPO / ".venv-ros") / "bin" / "python"
    if not python.exists():
        raise ManipError(f"{python} is missing: run bash .ci/setup_ros.sh (or set MANIP_ROS_VENV)")
    return python


def ros_environment(package: Path) -> dict[str, str]:
    """Environment for the ROS processes: DDS on loopback, a private domain id, the package on the path."""
    env = dict(os.environ)
    domain = os.environ.get("MANIP_ROS_DOMAIN_ID") or str(101 + os.getpid() % 100)
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=domain,
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONPATH=str(package),
        PYTHONUNBUFFERED="1",
        MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"),
    )
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    return env


def node_params(package: Path, name: str) -> dict:
    """The ``ros__parameters`` in the package's ``config/sim/<name>.yaml``."""
    import yaml

    path = package / "config" / "sim" / f"{name}.yaml"
    document = yaml.safe_load(path.read_text())
    return dict(next(iter(document.values()))["ros__parameters"])


def observation_map_file(package: Path, task: str) -> Path:
    """The task's observation map: ``config/sim/sim_observation_map_<Task>.yaml``, else the shared one."""
    config = package / "config" / "sim"
    own = config / f"sim_observation_map_{task}.yaml"
    return own if own.is_file() else config / "sim_observation_map.yaml"


# -- parameters ---------------------------------------------------------------------------------------------------
def policy_observation_params(map_file: Path, obs_keys: list[str]) -> dict:
    """policy_node parameters that feed ``obs_keys``: the observation map file, plus — for a node that does not
    read map files yet — the same inputs as the older parameters (cameras, one joint-state key). The one place
    to change when every node reads ``observation_map_file``."""
    mapping = yaml_map(map_file)
    unknown = [key for key in obs_keys if key not in mapping]
    if unknown:
        raise ManipError(f"{map_file}: no entry for the policy's observation(s) {unknown}; add them")
    images = [key for key in obs_keys if mapping[key]["type"] == "image"]
    joints = [key for key in obs_keys if mapping[key]["type"] == "joint_state"]
    params = {
        "observation_map_file": str(map_file),
        # an empty list is not a valid ROS parameter value: an unused camera when the policy needs none
        "camera_topics": [mapping[key]["topic"] for key in images] or ["/sim_robot/no_camera"],
        "camera_keys": images or ["no_camera"],
    }
    if joints:
        params.update(joint_state_topic=mapping[joints[0]]["topic"], joint_state_key=joints[0])
        params["joint_names"] = list(mapping[joints[0]]["joints"])
    else:
        params["joint_names"] = list(mapping["robot0_joint_pos"]["joints"])
    return params


def sim_robot_params(package: Path, task: str, horizon: int | None, obs_spec=None) -> dict:
    """sim_robot's parameters: ``config/sim/sim_robot.yaml`` with the task, the horizon and the cameras (at the
    size) the policy's observation spec asks for (none for a low-dim policy or the expert)."""
    params = node_params(package, "sim_robot")
    images = obs_spec.of_kind("rgb") if obs_spec is not None else []
    params.update(task=task, horizon=int(horizon or 0))
    if images:
        params.update(
            cameras=[f.name.removesuffix("_image") for f in images],
            image_height=int(images[0].shape[0]),
            image_width=int(images[0].shape[1]),
        )
    else:
        params.pop("cameras", None)
    return params


# -- processes ----------------------------------------------------------------------------------------------------
class RosProcesses:
    """ROS nodes started as ``python -m real.<node>`` with a parameter file each; :meth:`stop` ends them all."""

    def __init__(self, logs: Path):
        self.package = ros_package()
        self.python = ros_python()
        self.env = ros_environment(self.package)
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.nodes: dict[str, subprocess.Popen] = {}
        self._files: list = []

    def start(self, node: str, module: str, params: dict) -> subprocess.Popen:
        """Start ``real.<module>`` as ROS node ``node`` with ``params``; its output goes to ``logs/<node>.log``."""
        import yaml

        params_file = self.logs / f"{node}.params.yaml"
        params_file.write_text(yaml.safe_dump({node: {"ros__parameters": params}}))
        log = (self.logs / f"{node}.log").open("w")
        self._files.append(log)
        self.nodes[node] = subprocess.Popen(
            [str(self.python), "-m", f"real.{module}", "--ros-args", "--params-file", str(params_file)],
            cwd=self.package,  # `-m real.X` must find the ROS module, not the repository's real/ folder
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self.nodes[node]

    def check_alive(self) -> None:
        """Raise a one-line error naming a node that exited (with the last line of its log)."""
        for node, proc in self.nodes.items():
            if proc.poll() is not None:
                lines = (self.logs / f"{node}.log").read_text().strip().splitlines() or ["no output"]
                raise ManipError(f"{node} exited with status {proc.returncode}: {lines[-1]}")

    def stop(self) -> None:
        for proc in self.nodes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.nodes.values():
            try:
                proc.wait(timeout=NODE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for handle in self._files:
            handle.close()

    def __enter__(self) -> RosProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def drive_episodes(ros: RosProcesses, config: dict, episodes: int, quiet: bool = True):
    """Run ``real.episode_driver`` with ``config``; yield one record per episode (raises on a driver error)."""
    log = (ros.logs / "episode_driver.log").open("w")
    driver = subprocess.Popen(
        [str(ros.python), "-m", "real.episode_driver", json.dumps(config)],
        cwd=ros.package,
        env=ros.env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in driver.stdout] + [lines.put("")], daemon=True
    ).start()

    def records():
        while True:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                ros.check_alive()
                continue
            if not line:
                ros.check_alive()
                raise ManipError(f"the episode driver exited (status {driver.wait()}); see {ros.logs}")
            message = json.loads(line)
            if "error" in message:
                raise ManipError(f"{message['error']} (logs: {ros.logs})")
            if message.get("finished"):
                return
            if "seed" in message:
                yield message

    try:
        yield from progress(records(), desc="eval --ros", total=episodes, quiet=quiet, unit="ep")
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.wait()
        log.close()


def episode_timeout_s(horizon: int, rate: float) -> float:
    """Wall-clock allowance for one episode: ten times its duration at the control rate, plus a minute."""
    return 10.0 * horizon / rate + 60.0


# -- eval ---------------------------------------------------------------------------------------------------------
def evaluate_ros(
    source, task: str, episodes: int, out: str | Path, seed: int = 0, horizon: int | None = None,
    quiet: bool = False, start_timeout_s: float = 300.0, executor_mode: str | None = None,
    sim_clock: bool = True,
) -> dict:  # fmt: skip
    """Evaluate ``source`` (a :class:`manip.sim.eval.SourceSpec`: ``checkpoint`` or ``expert``) on ``task``
    through the ROS processes; write ``out/results.json`` (``manip eval``'s keys plus ``ros``); return it.
    ``executor_mode`` overrides the policy node's ``executor_mode`` (config/sim/sim_policy.yaml: receding).
    ``sim_clock``: sim_robot is the ROS clock and steps in lockstep with the policy node (``use_sim_time``), so a
    CPU too slow to render the cameras at the control rate slows the episode down instead of dropping
    commands; False runs both on the wall clock, as on a real robot."""
    from manip.sim.eval import episode_summary, write_results
    from manip.sim.tasks import get_task

    spec = get_task(task)
    if episodes < 1:
        raise ManipError(f"--episodes must be >= 1, got {episodes}")
    if source.kind not in ("checkpoint", "expert"):
        raise ManipError("--ros evaluates --checkpoint CKPT or --expert (it starts its own server)")
    if source.kind == "expert" and executor_mode is not None:
        raise ManipError(
            "--executor applies to a checkpoint; the scripted expert commands sim_robot directly"
        )
    if executor_mode is not None and executor_mode not in MODES:
        raise ManipError(f"--executor '{executor_mode}' is not one of {', '.join(MODES)}")
    out = Path(out).resolve()  # the ROS processes run in the package folder
    out.mkdir(parents=True, exist_ok=True)
    steps = int(horizon or spec.horizon)
    seeds = [seed + i for i in range(episodes)]
    driver = {
        "seeds": seeds,
        "episode_timeout_s": episode_timeout_s(steps, spec.control_rate),
        "start_timeout_s": start_timeout_s,
    }
    provenance = code_provenance()  # the code as the run starts
    started = time.perf_counter()
    server = None
    checkpoint_id = None
    policy: dict = {}
    with RosProcesses(out / "ros_logs") as ros:
        try:
            if source.kind == "expert":
                robot = sim_robot_params(ros.package, task, horizon)
                ros.start("sim_robot", "sim_robot_node", {**robot, "publish_clock": sim_clock})
                driver["enable_service"] = "/sim_robot/expert"
            else:
                from manip.cli.launch import start_server
                from manip.real.client.connection import PolicyClient

                server = start_server(["--checkpoint", source.path, "--host", "127.0.0.1", "--port", "0"])
                with PolicyClient(server.url) as client:
                    metadata = client.metadata
                checkpoint_id = metadata.checkpoint_id or None
                map_file = observation_map_file(ros.package, task)
                policy = {
                    **node_params(ros.package, "sim_policy"),
                    **policy_observation_params(map_file, metadata.obs_spec.names),
                    "server_url": server.url,
                    "dry_run": False,
                    "control_rate_hz": float(spec.control_rate),
                    "use_sim_time": sim_clock,
                }
                if executor_mode:
                    policy["executor_mode"] = executor_mode
                robot = sim_robot_params(ros.package, task, horizon, metadata.obs_spec)
                ros.start("sim_robot", "sim_robot_node", {**robot, "publish_clock": sim_clock})
                ros.start("policy_node", "policy_node", policy)
                driver.update(enable_service="/policy_node/enable", policy="/policy_node")
            records = list(drive_episodes(ros, driver, episodes, quiet))
        finally:
            if server is not None:
                server.stop()
    wall = time.perf_counter() - started
    results = episode_summary(task, seeds, records)
    latency = {"p50": records[-1].get("latency_p50_ms", 0.0), "p99": records[-1].get("latency_p99_ms", 0.0)}
    results.update(
        latency_ms=latency,
        source=source.label(),
        errors=sum("error" in r for r in records),
        wall_s=round(wall, 3),
        **provenance,
        checkpoint_id=checkpoint_id,
        ros=ros_block(records, spec.control_rate, source.kind, policy.get("executor_mode"), sim_clock),
    )
    write_results(out, results)
    return results


def ros_block(
    records: list[dict], target_hz: float, kind: str, executor_mode: str | None = None, sim_clock: bool = True
) -> dict:
    """The ``ros`` block of results.json: what the robot received and what the policy node did, and on which
    clock (``sim_clock``: sim_robot's, in lockstep)."""
    import numpy as np

    rates = [r["command_rate_hz"] for r in records if r["command_rate_hz"] > 0]
    block = {
        "actor": "policy_node" if kind == "checkpoint" else "sim_robot scripted expert",
        "command_rate_hz": round(float(np.mean(rates)), 3) if rates else 0.0,
        "target_rate_hz": float(target_hz),
        "commands": sum(r["commands"] for r in records),
        "stop_trajectories": sum(r["stops"] for r in records),
        "holds": sum(r["held_ticks"] for r in records),
        "actuating_ticks": sum(r["actuating_ticks"] for r in records),
        "lockstep_timeouts": sum(r.get("lockstep_timeouts", 0) for r in records),
        "clock": "sim (lockstep)" if sim_clock else "wall",
    }
    if kind == "checkpoint":
        # the node's receding requests the next chunk ahead, as async does (policy_node.executor_mode_settings)
        block["executor_mode"] = executor_mode
        block["latency_ms"] = {"p50": records[-1]["latency_p50_ms"], "p99": records[-1]["latency_p99_ms"]}
    return block


# -- recording ----------------------------------------------------------------------------------------------------
def record_with_expert(
    task: str, episodes: int, store: str | Path, seed: int = 0, horizon: int | None = None,
    camera: str = "agentview", image_size: int = 84, quiet: bool = False,
) -> list[dict]:  # fmt: skip
    """Record ``episodes`` demonstrations on the robot path into the Zarr store ``store``: sim_robot's scripted
    expert commands the arm over ``/joint_trajectory_controller/joint_trajectory`` + ``/gripper_command``
    while ``recorder_node`` records ``camera`` (``<camera>_image``), the arm joints (``robot0_joint_pos``) and
    the commanded action (7 joint targets + gripper) from the live topics. Returns the per-episode records
    (seed, success, steps, commands); each episode is committed with its success label."""
    from manip.sim.tasks import get_task

    spec = get_task(task)
    if episodes < 1:
        raise ManipError(f"episodes must be >= 1, got {episodes}")
    store = Path(store).resolve()
    steps = int(horizon or spec.horizon)
    with RosProcesses(store.parent / f"{store.name}.ros_logs") as ros:
        robot = sim_robot_params(ros.package, task, horizon)
        robot.update(
            cameras=[camera],
            image_height=image_size,
            image_width=image_size,
            expert_interface="joint_trajectory",
        )
        ros.start("sim_robot", "sim_robot_node", robot)
        arm_joints = yaml_map(observation_map_file(ros.package, task))["robot0_joint_pos"]["joints"]
        ros.start(
            "recorder_node",
            "recorder_node",
            {
                "store_path": str(store),
                "record_rate_hz": float(spec.control_rate),
                "camera_topics": [f"/{camera}/color/image_raw"],
                "camera_keys": [f"{camera}_image"],
                "joint_state_topic": robot["joint_state_topic"],
                "joint_names": list(arm_joints),
                "joint_state_key": "robot0_joint_pos",
                "max_frame_age_s": 0.5,
                "action_topic": robot["trajectory_topic"],
                "gripper_topic": robot["gripper_topic"],
                "task": task,
                "instruction": spec.instruction,
            },
        )
        driver = {
            "seeds": [seed + i for i in range(episodes)],
            "enable_service": "/sim_robot/expert",
            "recorder": "/recorder_node",
            "episode_timeout_s": episode_timeout_s(steps, spec.control_rate),
            "start_timeout_s": 300.0,
        }
        return list(drive_episodes(ros, driver, episodes, quiet))


def yaml_map(path: Path) -> dict:
    """An observation map file as a dict."""
    import yaml

    return yaml.safe_load(path.read_text())
