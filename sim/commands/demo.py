"""`manip demo`: scripted demos on Lift, train a low-dim policy, evaluate it and print the success rate"""

from data.cli.verb import not_available_yet

VERB = not_available_yet(
    "scripted demos on Lift, train a low-dim policy, evaluate it and print the success rate", "issues 3 and 4"
)
