"""The human front end of collection: a viewer window with a HUD, pacing, start-on-move and end-of-episode prompts.

:class:`TeleopUI` plugs into :func:`manip.sim.collect.collect` (as ``front``). Per episode:

1. **ready** — the scene is shown, the clock does not run; the episode starts when the operator first moves
   (or toggles the gripper, or presses start: Enter / the right SpaceMouse button). Esc quits.
2. **running** — one env step per tick at the task's control rate (``env.control_rate``, 20 Hz), the HUD shows
   step, time left, gripper and success. Enter ends the episode early, Backspace discards it, Tab redoes it.
3. **prompt** — after success, time-up or Enter the scene freezes and the operator answers keep (Enter) /
   discard (Backspace) / redo on the same seed (Tab) / quit (Esc). Key presses made before the prompt appeared
   are ignored. With ``auto_keep`` there is no prompt: successes are kept, failures only with
   ``keep_failures``.

Each decision is confirmed on the HUD and as a line on stderr. The scene is rendered offscreen (the env needs
``offscreen=True``) and shown through :class:`manip.sim.viewer.Viewer`.
"""

from __future__ import annotations

import sys

import numpy as np

from manip.sim.collect import Episode
from manip.sim.hud import HudState, compose, hud_lines
from manip.sim.pacing import Pacer
from manip.sim.viewer import Viewer

CAMERA = "agentview"
VIEW_SIZE = 480
DECISION_OF_EVENT = {"finish": "keep", "discard": "discard", "restart": "redo", "quit": "quit"}
ENDINGS = {
    "success": "SUCCESS - keep this episode?",
    "timeout": "TIME UP (not successful) - keep it anyway?",
    "finish": "ENDED by you - keep it?",
}


class TeleopUI:
    """Viewer + HUD + pacing + prompts for one collection run (see the module docstring)."""

    paced = True

    def __init__(
        self,
        env,
        device,
        episodes: int,
        keep_failures: bool = False,
        auto_keep: bool = False,
        corrections: bool = False,
        camera: str = CAMERA,
        size: int = VIEW_SIZE,
        quiet: bool = False,
    ):
        self.env, self.device = env, device
        self.keep_failures, self.auto_keep, self.corrections = keep_failures, auto_keep, corrections
        self.camera, self.size, self.quiet = camera, size, quiet
        self.pacer = Pacer(env.control_rate)
        self.hud = HudState(
            task=env.task.name, instruction=env.task.instruction, episodes=episodes, horizon=env.horizon,
            rate=env.control_rate, controls=device.controls,
        )  # fmt: skip
        self.viewer = Viewer(f"manip collect - {env.task.name}", keys=not device.reads_keyboard)
        self.scene: np.ndarray | None = None

    # -- drawing ---------------------------------------------------------------------------------------
    def _draw(self, render: bool = True) -> None:
        if render or self.scene is None:
            self.scene = self.env.render(self.camera, self.size)
        self.viewer.show(compose(self.scene, hud_lines(self.hud)))

    def _sync(self, episode: Episode, report, command=None) -> None:
        hud = self.hud
        hud.seed, hud.step, hud.success = episode.seed, episode.steps, episode.success
        hud.kept, hud.discarded = report.kept, report.discarded
        if command is not None:
            hud.gripper_closed = bool(command.action[6] > 0)
            if self.corrections:
                hud.driver = "operator" if command.active else "policy"

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"collect: {text}", file=sys.stderr, flush=True)

    # -- the collector's hooks -------------------------------------------------------------------------
    def ready(self, env, device, obs, episode: Episode, report) -> bool:
        """Show the scene until the operator moves or presses start; False when they quit."""
        self.viewer.clear_events()
        self._sync(episode, report)
        self.hud.phase, self.hud.gripper_closed = "ready", False
        start = "press Enter" if device.reads_keyboard else "press the right button or Enter"
        self.hud.banner = (
            f"READY: move to start ({start})",
            "the clock starts with your first move",
        )
        self.hud.driver = "policy (press Enter to start)" if self.corrections else None
        self._draw()
        self._say(f"episode {report.kept + 1} of {self.hud.episodes} (seed {episode.seed}): move to start")
        while True:
            self.pacer.tick()
            command = device.poll(env, obs)
            event = command.event or self.viewer.take_event()
            if event == "quit":
                return False
            if event == "finish" or command.active or command.action[6] > 0:
                self.hud.phase = "running"
                self.hud.banner = ("RECORDING", "Enter: end now   Backspace: discard   Tab: redo")
                return True
            self._draw(render=False)

    def tick(self) -> float:
        return self.pacer.tick()

    def event(self) -> str | None:
        return self.viewer.take_event()

    def show(self, env, episode: Episode, report, command) -> None:
        self._sync(episode, report, command)
        self._draw()

    def decide(self, env, device, episode: Episode, report) -> str:
        """The operator's keep / discard / redo / quit at the end of an episode (a rule with ``auto_keep``)."""
        self._sync(episode, report)
        if self.auto_keep:
            return "keep" if episode.success or self.keep_failures else "discard"
        device.poll(env, None)  # drop key presses made before the prompt appeared
        self.viewer.clear_events()
        keep = "Enter / right button: keep" if not device.reads_keyboard else "Enter: keep"
        self.hud.phase = "prompt"
        self.hud.banner = (
            ENDINGS.get(episode.ended, "keep this episode?"),
            f"{keep}   Backspace: discard",
            "Tab: redo (same seed)   Esc: quit",
        )
        self._draw(render=False)
        self._say(
            f"{ENDINGS.get(episode.ended, 'keep it?')} {keep}, Backspace: discard, Tab: redo, Esc: quit"
        )
        while True:
            self.pacer.tick()
            event = device.poll(env, None).event or self.viewer.take_event()
            if event in DECISION_OF_EVENT:
                return DECISION_OF_EVENT[event]
            self._draw(render=False)

    def announce(self, text: str) -> None:
        self.hud.last = text
        self._say(text)

    def close(self) -> None:
        self.viewer.close()
