"""`manip train`: train a policy from a YAML config"""

from data.cli.verb import not_available_yet

VERB = not_available_yet("train a policy from a YAML config", "issue 4")
