"""Shared fixtures for the sim tests: real robosuite envs (headless)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def lift_env():
    """One low-dim Lift env shared by the tests that only reset and step it."""
    from manip.sim.env import make_env

    env = make_env("Lift")
    yield env
    env.close()
