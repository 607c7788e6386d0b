"""`manip serve`: serve a checkpoint over WebSocket to robots and sim clients"""

from data.cli.verb import not_available_yet

VERB = not_available_yet("serve a checkpoint over WebSocket to robots and sim clients", "issue 5")
