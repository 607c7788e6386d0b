"""Python module of the ROS 2 package ``real`` (named ``real_ros`` so it never shadows manip's ``real``).

Nodes: ``policy_node`` (policy server → robot commands), ``camera_node`` (RealSense → sensor_msgs/Image),
``recorder_node`` (live topics → Zarr demonstrations). Parameters: :mod:`real_ros.params`.
"""
