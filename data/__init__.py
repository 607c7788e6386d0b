"""manip.data: the episode store (Zarr), recorder, sampler, normalizers, converters and specs.

Importing this package pulls in numpy only; zarr and torch load when the modules that need them are used.
"""
