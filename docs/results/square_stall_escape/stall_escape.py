"""A stall escape on NutAssemblySquare, screened outside the package: the committed baseline re-plans every 4 steps;
when its end effector has moved less than EPS metres over the last K decisions, 16 candidates are drawn and RULE
picks the one executed (``grip``: the most decisive gripper command over the first 8 steps; ``far``: the farthest
from the rest of the previous chunk; ``up``: the largest mean upward motion), instead of one plain draw.

Usage: MUJOCO_GL=egl python docs/results/square_stall_escape/stall_escape.py RULE K EPS SEED...
"""

import sys

import numpy as np

from manip.policies.serving import LocalPolicySource
from manip.sim.env import make_env_for
from manip.sim.tasks import controller_for

rule, k, eps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
seeds = [int(s) for s in sys.argv[4:]]
src = LocalPolicySource.from_checkpoint("docs/results/square_beyond_imitation/checkpoint")
env = make_env_for(src.metadata.obs_spec, "NutAssemblySquare", offscreen=True)
plain = src.request
state = {}


def request(obs, t_obs, prefix=None, instruction=None):
    eef = np.asarray(obs["robot0_eef_pos"])[-1]
    hist = state.setdefault("eef", [])
    hist.append(eef)
    prev = state.get("prev")
    stuck = len(hist) > k and np.linalg.norm(hist[-1] - hist[-1 - k]) < eps
    if not stuck:
        chunk = plain(obs, t_obs)
    else:
        state["escapes"] = state.get("escapes", 0) + 1
        batch = {n: np.repeat(np.asarray(v)[None], 16, 0) for n, v in obs.items()}
        cands = src.request_batch(batch)
        if rule == "far":
            i = int(np.argmax(np.linalg.norm((cands[:, :12] - prev[4:16][None]).reshape(16, -1), axis=1)))
        elif rule == "grip":
            i = int(np.argmax(np.abs(cands[:, :8, 6].mean(1))))  # most decisive gripper
        elif rule == "up":
            i = int(np.argmax(cands[:, :8, 2].mean(1)))
        else:
            i = 0
        chunk = cands[i]
    state["prev"] = chunk
    return chunk


src.request = request
ok = 0
for seed in seeds:
    state.clear()
    obs = env.reset(seed=seed)
    src.start_episode(seed)
    ctl = controller_for(src, env.task, None, n_action_steps=4)
    for t in range(env.horizon):
        obs, r, term, trunc, _ = env.step(ctl.act(obs, t * env.dt).action)
        if term or trunc:
            break
    ok += bool(term)
    print(seed, "OK" if term else "FAIL", t, "escapes", state.get("escapes", 0), flush=True)
print("total", ok, len(seeds))
