"""Noise-space steering's environment side: parallel simulation workers and the learning loop (``manip steer``)."""
