"""`manip bench`: run a benchmark and print its figures"""

from data.cli.verb import not_available_yet

VERB = not_available_yet("run a benchmark and print its figures", "issue 2")
