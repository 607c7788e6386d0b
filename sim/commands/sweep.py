"""`manip sweep`: run a sweep of tasks x checkpoints x seeds x settings"""

from data.cli.verb import not_available_yet

VERB = not_available_yet("run a sweep of tasks x checkpoints x seeds x settings", "issue 3")
