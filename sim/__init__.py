"""manip.sim: robosuite tasks, the env wrapper, scripted experts, teleop devices, the eval runner and sweeps."""
