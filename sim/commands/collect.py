"""`manip collect`: record demonstrations (scripted expert or teleop) into a Zarr store"""

from data.cli.verb import not_available_yet

VERB = not_available_yet("record demonstrations (scripted expert or teleop) into a Zarr store", "issue 3")
