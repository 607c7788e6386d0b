"""Noise-space steering (DSRL): a SAC actor picks the initial noise a frozen flow / MeanFlow policy turns into a chunk.

:mod:`.networks` (actor and critics), :mod:`.sac` (the updates and the replay buffer), :mod:`.policy` (the
``steered`` policy type: the frozen base policy + the actor, loadable like any checkpoint). The environment loop that
gathers experience lives in ``manip.sim.steer`` (policies do not import sim).
"""
