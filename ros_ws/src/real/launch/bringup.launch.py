"""Bring up manip on a real arm: the policy node (and, optionally, the RealSense camera node).

    ros2 launch real bringup.launch.py server_url:=ws://gpu-host:8000 token_file:=~/.manip-token
    ros2 launch real bringup.launch.py dry_run:=false         # then: ros2 service call /policy_node/enable ...

dry_run defaults to true: the node computes actions and publishes them on ~/preview, commanding nothing.
Launch arguments override the values in params_file (config/policy.yaml by default).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "real"


def generate_launch_description():
    config_dir = Path(get_package_share_directory(PACKAGE)) / "config"
    arguments = [
        DeclareLaunchArgument("server_url", default_value="ws://127.0.0.1:8000", description="policy server"),
        DeclareLaunchArgument("token_file", default_value="", description="file holding the server's token"),
        DeclareLaunchArgument(
            "control_rate_hz", default_value="10.0", description="control ticks per second"
        ),
        DeclareLaunchArgument(
            "camera_topics",
            default_value="['/camera/color/image_raw']",
            description="camera topics, one per observation key in camera_keys",
        ),
        DeclareLaunchArgument(
            "camera_transport", default_value="raw", description="raw (Image) or compressed"
        ),
        DeclareLaunchArgument(
            "joint_state_topic", default_value="/joint_states", description="JointState topic"
        ),
        DeclareLaunchArgument(
            "command_interface", default_value="joint_trajectory", description="joint_trajectory or cartesian"
        ),
        DeclareLaunchArgument(
            "command_topic",
            default_value="/joint_trajectory_controller/joint_trajectory",
            description="where commands go while actuating",
        ),
        DeclareLaunchArgument(
            "dry_run", default_value="true", description="true: publish to ~/preview only, command nothing"
        ),
        DeclareLaunchArgument(
            "params_file", default_value=str(config_dir / "policy.yaml"), description="policy node parameters"
        ),
        DeclareLaunchArgument("start_camera", default_value="false", description="also start camera_node"),
        DeclareLaunchArgument(
            "camera_params_file",
            default_value=str(config_dir / "camera.yaml"),
            description="camera parameters",
        ),
    ]

    def text(name):
        return ParameterValue(LaunchConfiguration(name), value_type=str)

    overrides = {
        "server_url": text("server_url"),
        "token_file": text("token_file"),
        "control_rate_hz": ParameterValue(LaunchConfiguration("control_rate_hz"), value_type=float),
        # No value_type: the launch system reads the text as YAML, so "['/a', '/b']" becomes a string list.
        "camera_topics": ParameterValue(LaunchConfiguration("camera_topics")),
        "camera_transport": text("camera_transport"),
        "joint_state_topic": text("joint_state_topic"),
        "command_interface": text("command_interface"),
        "command_topic": text("command_topic"),
        "dry_run": ParameterValue(LaunchConfiguration("dry_run"), value_type=bool),
    }
    policy_node = Node(
        package=PACKAGE,
        executable="policy_node",
        name="policy_node",
        output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
    )
    camera_node = Node(
        package=PACKAGE,
        executable="camera_node",
        name="camera_node",
        output="screen",
        parameters=[LaunchConfiguration("camera_params_file")],
        condition=IfCondition(LaunchConfiguration("start_camera")),
    )
    return LaunchDescription([*arguments, policy_node, camera_node])
