"""`manip data`: inspect, validate and convert Zarr datasets"""

from data.cli.verb import not_available_yet

VERB = not_available_yet("inspect, validate and convert Zarr datasets", "issue 2")
