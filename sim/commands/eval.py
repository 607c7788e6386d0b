"""`manip eval`: evaluate a checkpoint or the scripted expert in a robosuite task"""

from data.cli.verb import not_available_yet

VERB = not_available_yet("evaluate a checkpoint or the scripted expert in a robosuite task", "issue 3")
