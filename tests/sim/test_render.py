"""Headless GL selection: the choice is probed once and exported; no usable GL is a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.cli import manip

PROBE = "import manip.sim.render as r; r.BACKENDS = ('bogus',); r.choose_gl_backend()"


def test_no_gl_is_a_one_line_error_naming_what_to_install():
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "no headless OpenGL" in last and "apt-get install" in last and "MUJOCO_GL" in last


def test_backend_is_chosen_and_exported_before_mujoco_loads():
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    code = "import os, manip.sim.render as r; r.import_robosuite(); print(os.environ['MUJOCO_GL'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("egl", "osmesa")
    assert (
        "WARNING" not in done.stderr and "macro" not in done.stderr
    )  # robosuite's import warnings are silenced


def test_bad_mujoco_gl_is_one_line(tmp_path):
    result = manip(
        "collect",
        "--task",
        "Lift",
        "--device",
        "scripted",
        "--episodes",
        "1",
        "--out",
        str(tmp_path / "x.zarr"),
        env={"MUJOCO_GL": "vulkan"},
    )
    assert result.returncode != 0
    assert "MUJOCO_GL=vulkan is not a MuJoCo GL backend" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
