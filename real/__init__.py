"""manip.real: inference server, light client, chunk executor, safety, cameras and robot interfaces.

The light parts (client, executor, safety) import with numpy, msgpack and websockets only: never torch,
robosuite or pyrealsense2, because the ROS node runs them inside a ROS Python.
"""
