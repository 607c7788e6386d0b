"""ament_python package `real`; its Python module is `real` too (manip installs everything under `manip.`)."""

from glob import glob

from setuptools import setup

PACKAGE = "real"
MODULE = "real"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[MODULE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/sim", glob("config/sim/*.yaml")),  # sim_robot (robosuite) set-up
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="manip",
    maintainer_email="manip@example.org",
    description="manip policy node, RealSense camera publisher, recorder and simulated robot for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "policy_node = real.policy_node:main",
            "camera_node = real.camera_node:main",
            "recorder_node = real.recorder_node:main",
            "sim_robot = real.sim_robot_node:main",
        ],
    },
)
