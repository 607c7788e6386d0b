"""Python module of the ROS 2 package ``real`` (manip itself installs only under ``manip.``).

Nodes: ``policy_node`` (policy server → robot commands), ``camera_node`` (RealSense → sensor_msgs/Image),
``recorder_node`` (live topics → Zarr demonstrations). Parameters: :mod:`real.params`.
"""
