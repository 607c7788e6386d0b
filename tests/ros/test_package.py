"""The ROS package agrees with itself: launch file (parsed, since launch/launch_ros are not installable here),
setup.py entry points, package.xml, the nodes' declared parameters and config/*.yaml. No rclpy needed."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml
from real.params import (
    EXECUTOR_MODES,
    LAUNCH_OVERRIDES,
    CameraNodeParams,
    PolicyNodeParams,
    RecorderNodeParams,
    defaults,
    launch_overrides,
)

from manip.real.client.executor import MODES
from tests.ros.conftest import PACKAGE, ROS_PYTHON

LAUNCH = PACKAGE / "launch" / "bringup.launch.py"
NODE_PARAMS = {
    "policy_node": PolicyNodeParams,
    "camera_node": CameraNodeParams,
    "recorder_node": RecorderNodeParams,
}


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == name
    ]


def keywords(call: ast.Call) -> dict[str, ast.AST]:
    return {k.arg: k.value for k in call.keywords}


def literal(node: ast.AST):
    return ast.literal_eval(node)


@pytest.fixture(scope="module")
def launch_tree():
    return ast.parse(LAUNCH.read_text())


@pytest.fixture(scope="module")
def launch_arguments(launch_tree) -> dict[str, str]:
    out = {}
    for call in calls(launch_tree, "DeclareLaunchArgument"):
        name = literal(call.args[0])
        default = keywords(call).get("default_value")
        out[name] = literal(default) if isinstance(default, ast.Constant) else None
    return out


def entry_points() -> dict[str, str]:
    tree = ast.parse((PACKAGE / "setup.py").read_text())
    (setup,) = calls(tree, "setup")
    scripts = literal(keywords(setup)["entry_points"])["console_scripts"]
    return dict(line.replace(" ", "").split("=") for line in scripts)


def test_launch_declares_the_documented_arguments_with_safe_defaults(launch_arguments):
    for name in (
        "server_url",
        "token_file",
        "control_rate_hz",
        "camera_topics",
        "camera_transport",
        "joint_state_topic",
        "command_interface",
        "dry_run",
        "params_file",
    ):
        assert name in launch_arguments, name
    assert launch_arguments["dry_run"] == "true"
    # every other argument that sets a parameter is empty by default: the params file's value holds
    for name in LAUNCH_OVERRIDES:
        if name != "dry_run":
            assert launch_arguments[name] == "", name


def test_launch_starts_executables_the_package_installs(launch_tree):
    scripts = entry_points()
    nodes = calls(launch_tree, "Node")
    assert {literal(keywords(n)["executable"]) for n in nodes} <= set(scripts)
    assert "policy_node" in {literal(keywords(n)["executable"]) for n in nodes}
    assert 'PACKAGE = "real"' in LAUNCH.read_text()
    assert all(ast.unparse(keywords(node)["package"]) == "PACKAGE" for node in nodes)
    for target in scripts.values():
        module, func = target.split(":")
        path = PACKAGE / (module.replace(".", "/") + ".py")
        assert path.is_file(), target
        assert any(
            isinstance(n, ast.FunctionDef) and n.name == func for n in ast.parse(path.read_text()).body
        )


def test_launch_parameter_overrides_are_declared_by_the_node(launch_tree, launch_arguments):
    policy = defaults(PolicyNodeParams)
    assert set(LAUNCH_OVERRIDES) <= set(policy) and set(LAUNCH_OVERRIDES) <= set(launch_arguments)
    assert {"server_url", "dry_run", "control_rate_hz", "camera_topics", "command_interface"} <= set(
        LAUNCH_OVERRIDES
    )
    for name, kind in LAUNCH_OVERRIDES.items():
        assert isinstance(policy[name], kind), name
    # the policy node is built at launch time from params_file + launch_overrides(the given arguments)
    (opaque,) = calls(launch_tree, "OpaqueFunction")
    assert ast.unparse(keywords(opaque)["function"]) == "policy_node"
    (function,) = [n for n in launch_tree.body if isinstance(n, ast.FunctionDef) and n.name == "policy_node"]
    assert calls(function, "launch_overrides") and calls(function, "Node")


def test_launch_overrides_keep_the_params_file_for_empty_arguments_and_type_the_rest():
    assert launch_overrides({name: "" for name in LAUNCH_OVERRIDES}) == {}
    assert launch_overrides({"dry_run": "true"}) == {"dry_run": True}
    given = {
        "server_url": "ws://gpu:8000",
        "control_rate_hz": "15",
        "camera_topics": "['/front/color/image_raw', '/wrist/color/image_raw']",
        "command_interface": "cartesian",
        "dry_run": "false",
    }
    assert launch_overrides(given) == {
        "server_url": "ws://gpu:8000",
        "control_rate_hz": 15.0,
        "camera_topics": ["/front/color/image_raw", "/wrist/color/image_raw"],
        "command_interface": "cartesian",
        "dry_run": False,
    }
    assert launch_overrides({"camera_topics": "/only/image_raw"}) == {"camera_topics": ["/only/image_raw"]}
    for name, text in (("control_rate_hz", "fast"), ("dry_run", "maybe"), ("camera_topics", "[1, 2]")):
        with pytest.raises(ValueError, match=f"launch argument {name}:="):
            launch_overrides({name: text})


def test_package_metadata_names_the_package_and_its_module_real():
    root = ET.parse(PACKAGE / "package.xml").getroot()
    assert root.findtext("name") == "real"
    assert root.find("export/build_type").text == "ament_python"
    assert (PACKAGE / "resource" / "real").is_file()
    setup_text = (PACKAGE / "setup.py").read_text()
    assert 'PACKAGE = "real"' in setup_text and 'MODULE = "real"' in setup_text
    assert (PACKAGE / "real" / "policy_node.py").is_file()
    depends = {d.text for d in root.iter("exec_depend")}
    assert {
        "rclpy",
        "sensor_msgs",
        "trajectory_msgs",
        "std_srvs",
        "diagnostic_msgs",
        "geometry_msgs",
    } <= depends


NODE_CONFIGS = sorted(p for p in (PACKAGE / "config").glob("*.yaml") if not p.name.endswith("_map.yaml"))


@pytest.mark.parametrize("config", NODE_CONFIGS, ids=lambda p: p.name)
def test_config_yaml_sets_exactly_the_declared_parameters(config):
    raw = yaml.safe_load(config.read_text())
    ((node, section),) = raw.items()
    params = section["ros__parameters"]
    declared = {f.name for f in dataclasses.fields(NODE_PARAMS[node])}
    assert set(params) == declared
    assert params == defaults(NODE_PARAMS[node])


def test_policy_node_params_report_bad_values_in_one_line_each():
    bad = PolicyNodeParams(
        control_rate_hz=-1.0, camera_keys=(), command_interface="velocity", max_state_age_s=-0.1
    )
    problems = bad.problems()
    assert len(problems) == 4
    assert any("control_rate_hz" in p and "checkpoint" in p for p in problems)
    assert any("max_state_age_s" in p for p in problems)
    assert any("camera_keys" in p for p in problems)
    assert any("velocity" in p for p in problems)
    assert PolicyNodeParams().problems() == []
    assert PolicyNodeParams().control_rate_hz == 0.0  # by default the checkpoint's rate


def test_the_example_observation_map_is_installed_with_the_package():
    maps = [p.name for p in (PACKAGE / "config").glob("*_map.yaml")]
    assert "panda_realsense_map.yaml" in maps  # setup.py installs config/*.yaml


def test_the_node_accepts_exactly_the_executor_modes():
    # params.py stays import-free for the launch file, so its list is checked against the executor's here
    assert EXECUTOR_MODES == MODES
    assert PolicyNodeParams(executor_mode="adaptive").problems() == []


@pytest.mark.ros
def test_the_nodes_never_import_torch_or_pyrealsense2(ros_env):
    code = (
        "import sys, importlib.util\n"
        "import real.policy_node, real.recorder_node, real.camera_node, manip.real.client.connection, manip.real.client.executor\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'pyrealsense2' not in sys.modules, 'pyrealsense2 in an rclpy process'\n"
        "print('torch installed:', importlib.util.find_spec('torch') is not None)\n"
    )
    result = subprocess.run(
        [str(ROS_PYTHON), "-c", code], env=ros_env, cwd=PACKAGE, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "torch installed: False" in result.stdout  # the ROS venv has no torch at all


@pytest.mark.ros
def test_bad_parameters_exit_with_one_line(ros_env):
    result = subprocess.run(
        [str(ROS_PYTHON), "-m", "real.policy_node", "--ros-args", "-p", "command_interface:=velocity"],
        env=ros_env,
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "velocity" in result.stderr
    assert "Traceback" not in result.stderr
