"""Headless rendering and a quiet robosuite import.

Call :func:`import_robosuite` instead of ``import robosuite``: it picks a headless GL backend (EGL, else OSMesa)
by setting ``MUJOCO_GL``/``PYOPENGL_PLATFORM`` *before* mujoco is imported, and registers a
``robosuite.macros_private`` module so robosuite neither warns about a missing private macro file nor logs
below ERROR. Images come out upright (OpenCV convention). The choice is stored in the environment, so worker
processes (started with spawn, never fork) inherit it without probing again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

from manip.core.errors import ManipError

BACKENDS = ("egl", "osmesa")  # headless, tried in this order
KNOWN_BACKENDS = (*BACKENDS, "glfw", "glx", "disable", "disabled", "off")
_PROBE = "import mujoco; c = mujoco.GLContext(8, 8); c.make_current(); c.free()"
_INSTALL_HINT = (
    "no headless OpenGL available for MuJoCo rendering: install EGL or OSMesa "
    "(apt-get install libegl1 libgl1-mesa-dri libosmesa6) or set MUJOCO_GL=egl|osmesa"
)


def _backend_works(backend: str) -> bool:
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _guard_egl_device() -> None:
    """robosuite picks the EGL device from ``CUDA_VISIBLE_DEVICES`` and fails on values that are not a list of
    integers (``""`` on CPU-only jobs, as submitit and many schedulers set it, or GPU UUIDs); then take the first
    EGL device explicitly through ``MUJOCO_EGL_DEVICE_ID`` (which robosuite reads first)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or "MUJOCO_EGL_DEVICE_ID" in os.environ:
        return
    if not all(part.strip().isdigit() for part in visible.split(",")):
        os.environ["MUJOCO_EGL_DEVICE_ID"] = "0"


def choose_gl_backend() -> str:
    """Return the headless GL backend for this process, probing EGL then OSMesa once and exporting the choice.

    A ``MUJOCO_GL`` already set by the user (or a parent process) is kept as it is. Raises :class:`ManipError`
    naming what to install when neither backend can open a context.
    """
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        if chosen not in KNOWN_BACKENDS:
            raise ManipError(
                f"MUJOCO_GL={chosen} is not a MuJoCo GL backend: set egl or osmesa (headless), or unset it"
            )
        if chosen in BACKENDS:
            os.environ.setdefault("PYOPENGL_PLATFORM", chosen)
        if chosen == "egl":
            _guard_egl_device()
        return chosen
    if "mujoco" in sys.modules:
        raise ManipError("mujoco was imported before manip.sim.render chose a GL backend; import sim first")
    for backend in BACKENDS:
        if backend == "egl":
            _guard_egl_device()
        if _backend_works(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            return backend
    raise ManipError(_INSTALL_HINT)


def _register_private_macros() -> None:
    if "robosuite.macros_private" in sys.modules:
        return
    macros = types.ModuleType("robosuite.macros_private")
    macros.CONSOLE_LOGGING_LEVEL = "ERROR"
    macros.FILE_LOGGING_LEVEL = None
    macros.IMAGE_CONVENTION = "opencv"  # upright images, row 0 at the top
    macros.__all__ = ["CONSOLE_LOGGING_LEVEL", "FILE_LOGGING_LEVEL", "IMAGE_CONVENTION"]
    sys.modules["robosuite.macros_private"] = macros


def import_robosuite():
    """Import robosuite headless and quiet (see the module docstring); returns the module."""
    if "robosuite" not in sys.modules:
        choose_gl_backend()
        _register_private_macros()
    from manip.core.errors import require

    try:
        return require("robosuite", "sim")
    except ImportError as exc:  # robosuite present but one of its own imports is missing
        raise ManipError(
            f"robosuite could not be imported (missing module '{exc.name}'): run .ci/setup.sh "
            "or pip install 'manip[sim]'"
        ) from None
