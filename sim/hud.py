"""The teleop heads-up display: what the operator needs to know, drawn beside the scene.

:func:`hud_lines` turns a :class:`HudState` into coloured text lines (task, episode and seed, step and time left,
gripper, success, kept/discarded counts, what to do now, the device's controls); :func:`compose` draws them on a
panel to the right of the rendered scene. Both are pure functions of their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

PANEL_WIDTH = 400
FONT_SIZE = 14
LINE_HEIGHT = 18
MARGIN = 10
KEY_COLUMN = 100  # a tab in a line starts its second column here

WHITE, GREY, GREEN, YELLOW, RED, CYAN = (
    (235, 235, 235), (150, 150, 150), (90, 220, 110), (250, 210, 70), (250, 110, 100), (110, 200, 250),
)  # fmt: skip
PANEL = (24, 26, 30)
BANNER = {"ready": CYAN, "running": WHITE, "prompt": YELLOW}


@dataclass
class HudState:
    """Everything the HUD shows; the collector updates it every tick."""

    task: str
    instruction: str
    episodes: int  # episodes to keep in this run
    horizon: int
    rate: float
    controls: tuple[tuple[str, str], ...] = ()
    seed: int = 0
    step: int = 0
    gripper_closed: bool = False
    success: bool = False
    kept: int = 0
    discarded: int = 0
    phase: str = "ready"  # ready | running | prompt
    banner: tuple[str, ...] = ()  # what to do now (one or more lines)
    driver: str | None = None  # "policy" or "operator" when a policy drives with corrections
    last: str = ""  # confirmation of the last decision ("kept episode 3 (seed 7)")

    @property
    def time_left(self) -> float:
        return max(self.horizon - self.step, 0) / self.rate


def hud_lines(state: HudState) -> list[tuple[str, tuple[int, int, int]]]:
    """The HUD as ``(text, rgb)`` lines, top to bottom (a tab separates a control from what it does)."""
    lines = [
        (f"{state.task}: {state.instruction}", WHITE),
        (f"episode {min(state.kept + 1, state.episodes)} of {state.episodes}   seed {state.seed}", WHITE),
        (f"step {state.step}/{state.horizon}   time left {state.time_left:4.1f} s", WHITE),
        (f"gripper {'CLOSED' if state.gripper_closed else 'open'}", WHITE),
        ("success: YES" if state.success else "success: not yet", GREEN if state.success else GREY),
        (f"kept {state.kept}   discarded {state.discarded}", WHITE),
    ]
    if state.driver:
        lines.append((f"driving: {state.driver}", CYAN if state.driver == "policy" else YELLOW))
    if state.last:
        lines.append((state.last, GREEN if state.last.startswith("kept") else RED))
    lines.append(("", WHITE))
    colour = BANNER.get(state.phase, WHITE)
    lines += [(text, colour) for text in state.banner]
    if state.controls:
        lines.append(("", WHITE))
        lines.append(("controls", GREY))
        lines += [(f"{keys}\t{meaning}", GREY) for keys, meaning in state.controls]
    return lines


@lru_cache(maxsize=1)
def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def compose(scene: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """The scene (uint8 HxWx3) with a HUD panel of ``lines`` on its right; returns uint8 Hx(W+panel)x3."""
    from PIL import Image, ImageDraw

    height, width = scene.shape[:2]
    canvas = Image.new("RGB", (width + PANEL_WIDTH, height), PANEL)
    canvas.paste(Image.fromarray(np.ascontiguousarray(scene, dtype=np.uint8)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = MARGIN
    for text, colour in lines:
        if y + LINE_HEIGHT > height:
            break
        for offset, part in zip((0, KEY_COLUMN), text.split("\t", 1), strict=False):
            draw.text((width + MARGIN + offset, y), part, fill=colour, font=_font())
        y += LINE_HEIGHT
    return np.asarray(canvas)
