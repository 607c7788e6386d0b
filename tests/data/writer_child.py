"""A child process for the crash tests: appends deterministic episodes forever until it is killed.

Usage: python -m tests.data.writer_child STORE MODE   (MODE: "stream" = one endless episode after 2 commits,
"commits" = many short committed episodes). Prints "committed <index>" after each commit (flushed).
"""

from __future__ import annotations

import sys

import numpy as np

from manip.data.recorder import Recorder
from manip.data.store import EpisodeStore


def episode_step(episode: int, t: int) -> dict[str, np.ndarray]:
    """The deterministic step ``t`` of episode ``episode`` (the parent recomputes it to check the store)."""
    rng = np.random.default_rng(episode * 100_003 + t)
    return {
        "action": rng.uniform(-1, 1, 7).astype(np.float32),
        "agentview_image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
    }


def episode_length(episode: int) -> int:
    return 3 + episode % 4


def main(path: str, mode: str) -> None:
    store = EpisodeStore.open(path, mode="a") if mode == "append" else EpisodeStore.create(path)
    recorder = Recorder(store, flush_every=1)
    episode = store.num_episodes
    while True:
        recorder.start_episode(task="Lift", seed=episode)
        endless = mode == "stream" and episode >= 2
        t = 0
        while endless or t < episode_length(episode):
            recorder.add_step(episode_step(episode, t), intervention=t == 1)
            t += 1
            if endless and t == 5:
                print("streaming", flush=True)
        recorder.commit(success=episode % 2 == 0)
        print(f"committed {episode}", flush=True)
        episode += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
