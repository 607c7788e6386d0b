"""Meta-World (v3, Sawyer arm) as a second task suite: tasks and difficulty groups (:mod:`.tasks`), the env
wrapper behind the same interface as :class:`manip.sim.env.ManipEnv` (:mod:`.env`), the per-difficulty results
table (:mod:`.table`) and the collect → train → evaluate grid (:mod:`.grid`)."""
