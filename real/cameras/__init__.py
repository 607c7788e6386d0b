"""RealSense cameras: the pyrealsense2 driver (own process), shared-memory frame slots, depth → point cloud.

pyrealsense2 must never share a process with rclpy (both bundle DDS; the process segfaults at exit), so
:class:`manip.real.cameras.process.CameraProcess` runs the driver in a child process and readers — a ROS node, the
recorder — take the newest frames from shared memory (:mod:`manip.real.cameras.shared`).
"""
