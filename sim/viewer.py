"""A window that shows frames (the rendered scene with its HUD) to the operator, through Tk.

Tk ships with Python (Debian: ``apt-get install python3-tk``) and needs only an X display; the frames are
rendered offscreen by MuJoCo, so the window works with EGL/OSMesa rendering and under Xvfb. Call :meth:`show`
from the thread that made the viewer; it also processes window events. Closing the window sets :attr:`closed`.
With ``keys=True`` the window itself turns Enter / Backspace / Tab / Esc into episode events (for devices that
do not read the keyboard, e.g. the SpaceMouse).
"""

from __future__ import annotations

import contextlib

import numpy as np

from manip.core.errors import ManipError

WINDOW_KEYS = {
    "Return": "finish",
    "KP_Enter": "finish",
    "BackSpace": "discard",
    "Tab": "restart",
    "Escape": "quit",
}


class Viewer:
    """One top-level window titled ``title`` showing the last frame passed to :meth:`show`."""

    def __init__(self, title: str, keys: bool = False):
        try:
            import tkinter
        except ImportError:
            raise ManipError(
                "the teleop viewer needs Tk: apt-get install python3-tk (or a Python built with tkinter)"
            ) from None
        try:
            self.root = tkinter.Tk(className="manip")
        except tkinter.TclError as exc:
            raise ManipError(
                f"the teleop viewer cannot open a window ({exc}): run it on a desktop or set DISPLAY"
            ) from None
        self.root.title(title)
        self.root.protocol("WM_DELETE_WINDOW", self._on_close)
        self.label = tkinter.Label(self.root, borderwidth=0, highlightthickness=0)
        self.label.pack()
        self.photo = None
        self.size: tuple[int, int] | None = None
        self.closed = False
        self.events: list[str] = []
        if keys:
            for key, event in WINDOW_KEYS.items():
                self.root.bind(f"<KeyPress-{key}>", lambda _e, ev=event: self.events.append(ev))

    def _on_close(self) -> None:
        self.closed = True

    def show(self, frame: np.ndarray) -> None:
        """Display ``frame`` (uint8 HxWx3) and process pending window events."""
        if self.closed:
            return
        from PIL import Image, ImageTk

        image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
        if self.photo is None or self.size != image.size:
            self.photo = ImageTk.PhotoImage(image)
            self.size = image.size
            self.label.configure(image=self.photo)
        else:
            self.photo.paste(image)
        self.root.update()

    def take_event(self) -> str | None:
        """The oldest unhandled window event (``quit`` once the window was closed), or None."""
        if self.closed:
            return "quit"
        return self.events.pop(0) if self.events else None

    def clear_events(self) -> None:
        """Forget window key presses not handled yet (so a stale key press cannot answer a new prompt)."""
        self.events.clear()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already destroyed with the display
            self.root.destroy()
