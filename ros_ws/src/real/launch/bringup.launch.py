"""Bring up manip on a real arm: the policy node (and, optionally, the RealSense camera node).

    ros2 launch real bringup.launch.py server_url:=ws://gpu-host:8000 token_file:=~/.manip-token
    ros2 launch real bringup.launch.py dry_run:=false         # then: ros2 service call /policy_node/enable ...
    ros2 launch real bringup.launch.py sim:=true task:=Lift server_url:=ws://127.0.0.1:8000 dry_run:=false

sim:=true starts the simulated robot (sim_robot: the robosuite task, config/sim/sim_robot.yaml) beside the
policy node and configures the node for it: config/sim/sim_policy.yaml on top of params_file, and the task's
observation map (config/sim/sim_observation_map_<task>.yaml, else config/sim/sim_observation_map.yaml).
`manip eval --ros` starts the same nodes with the same files.

dry_run defaults to true: the node computes actions and publishes them on ~/preview, commanding nothing.
The other arguments, when given, override the values in params_file (config/policy.yaml by default); left
empty, the file's values hold.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from real.params import LAUNCH_OVERRIDES, launch_overrides

PACKAGE = "real"


def sim_parameters(context) -> list:
    """With sim:=true, the policy node's parameters for sim_robot: sim_policy.yaml and the task's map file."""
    if LaunchConfiguration("sim").perform(context).lower() != "true":
        return []
    config = Path(get_package_share_directory(PACKAGE)) / "config" / "sim"
    own = config / f"sim_observation_map_{LaunchConfiguration('task').perform(context)}.yaml"
    map_file = own if own.is_file() else config / "sim_observation_map.yaml"
    return [str(config / "sim_policy.yaml"), {"observation_map_file": str(map_file)}]


def policy_node(context):
    """The policy node with params_file (+ the sim files with sim:=true) plus the launch arguments given."""
    given = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_OVERRIDES}
    params_file = LaunchConfiguration("params_file").perform(context)
    return [
        Node(
            package=PACKAGE,
            executable="policy_node",
            name="policy_node",
            output="screen",
            parameters=[params_file, *sim_parameters(context), launch_overrides(given)],
        )
    ]


def generate_launch_description():
    config_dir = Path(get_package_share_directory(PACKAGE)) / "config"
    from_file = " (empty: the params_file value)"
    arguments = [
        DeclareLaunchArgument("server_url", default_value="", description="policy server" + from_file),
        DeclareLaunchArgument(
            "token_file", default_value="", description="file holding the server's token" + from_file
        ),
        DeclareLaunchArgument(
            "control_rate_hz", default_value="", description="control ticks per second" + from_file
        ),
        DeclareLaunchArgument(
            "camera_topics",
            default_value="",
            description="camera topics, one per observation key in camera_keys, e.g. \"['/a', '/b']\""
            + from_file,
        ),
        DeclareLaunchArgument(
            "camera_transport", default_value="", description="raw (Image) or compressed" + from_file
        ),
        DeclareLaunchArgument(
            "joint_state_topic", default_value="", description="JointState topic" + from_file
        ),
        DeclareLaunchArgument(
            "command_interface", default_value="", description="joint_trajectory or cartesian" + from_file
        ),
        DeclareLaunchArgument(
            "command_topic", default_value="", description="where commands go while actuating" + from_file
        ),
        DeclareLaunchArgument(
            "dry_run", default_value="true", description="true: publish to ~/preview only, command nothing"
        ),
        DeclareLaunchArgument(
            "params_file", default_value=str(config_dir / "policy.yaml"), description="policy node parameters"
        ),
        DeclareLaunchArgument("start_camera", default_value="false", description="also start camera_node"),
        DeclareLaunchArgument(
            "sim", default_value="false", description="true: start sim_robot (robosuite) as the robot"
        ),
        DeclareLaunchArgument(
            "task", default_value="Lift", description="sim_robot's robosuite task (sim:=true)"
        ),
        DeclareLaunchArgument(
            "camera_params_file",
            default_value=str(config_dir / "camera.yaml"),
            description="camera parameters",
        ),
    ]
    camera_node = Node(
        package=PACKAGE,
        executable="camera_node",
        name="camera_node",
        output="screen",
        parameters=[LaunchConfiguration("camera_params_file")],
        condition=IfCondition(LaunchConfiguration("start_camera")),
    )
    sim_robot = Node(
        package=PACKAGE,
        executable="sim_robot",
        name="sim_robot",
        output="screen",
        parameters=[str(config_dir / "sim" / "sim_robot.yaml"), {"task": LaunchConfiguration("task")}],
        condition=IfCondition(LaunchConfiguration("sim")),
    )
    return LaunchDescription([*arguments, OpaqueFunction(function=policy_node), camera_node, sim_robot])
