"""Observation encoders: normalized observation history → one conditioning vector per sample."""
