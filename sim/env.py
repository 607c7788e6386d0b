"""``ManipEnv``: the gymnasium-style robosuite wrapper used by collection, evaluation and training rollouts.

Actions are 7-D per robot: OSC_POSE deltas (3 position, 3 axis-angle rotation in the robot's base frame, each
in [-1, 1]) and the gripper (-1 open, +1 close); a two-arm task takes 14-D actions, robot0's block first.
Observations are a dict of numpy arrays named as in the dataset (see ``docs/ARCHITECTURE.md``):
``robot0_eef_pos``, ``robot0_eef_quat``, ``robot0_gripper_qpos`` (and the same ``robot1_*`` keys for a second
robot), ``object`` and, in image mode, one ``<camera>_image`` per task camera, e.g. ``agentview_image`` and
``robot0_eye_in_hand_image`` (uint8 HWC, upright).

Seeding: robosuite 1.5.2 draws initial states from ``env.rng`` (made once in ``make(seed=)``), so
``reset(seed=s)`` re-seeds that generator in place; the same seed gives the same initial state. Model-level
randomness drawn when the model is built (e.g. Lift's cube size) comes from ``make_env(seed=)`` (the model
seed, 0 by default), so every env built with the same arguments — one per eval worker — agrees on each episode
seed. With ``hard_reset=True`` the model is rebuilt at every reset from the re-seeded generator instead.
"""

from __future__ import annotations

import re

import numpy as np

from manip.core.errors import ManipError
from manip.core.specs import FeatureSpec, Spec
from manip.sim.metaworld.tasks import is_metaworld
from manip.sim.render import import_robosuite
from manip.sim.tasks import ARM_DIM, TaskSpec, check_obs_mode, get_task

PROPRIO_KEYS = ("eef_pos", "eef_quat", "gripper_qpos")
LOWDIM_KEYS = tuple(f"robot0_{key}" for key in PROPRIO_KEYS)
ACTION_DIM = ARM_DIM
ACTION_SPEC = Spec((FeatureSpec("action", (ACTION_DIM,)),))


def lowdim_keys(task: TaskSpec) -> tuple[str, ...]:
    """The proprioception keys of ``task``'s observations: ``robot{i}_eef_pos/_eef_quat/_gripper_qpos`` per robot."""
    return tuple(f"robot{i}_{key}" for i in range(len(task.robots)) for key in PROPRIO_KEYS)


def action_spec_for(task: TaskSpec) -> Spec:
    """The action spec of ``task``: ``action`` with 7 dimensions per robot."""
    return Spec((FeatureSpec("action", (task.action_dim,)),))


def _no_multisampling(xml: str) -> str:
    """XML processor: render without multisampling (offsamples=0), so each new sim's GL context is cheap."""
    if "<quality" in xml:
        return re.sub(r"<quality([^>]*)/>", r'<quality\1 offsamples="0"/>', xml, count=1)
    return xml.replace("<visual>", '<visual>\n    <quality offsamples="0"/>', 1)


class ManipEnv:
    """One robosuite task behind ``reset(seed=)`` / ``step(action)``; see the module docstring."""

    def __init__(
        self,
        task: TaskSpec,
        obs_mode: str = "lowdim",
        image_size: int = 84,
        seed: int | None = None,
        offscreen: bool | None = None,
        hard_reset: bool = False,
        cheap_render: bool = True,
        horizon: int | None = None,
    ):
        self.task = task
        self.obs_mode = check_obs_mode(obs_mode)
        self.image_size = int(image_size)
        if self.image_size < 8:
            raise ManipError(f"image size {image_size} is too small (need >= 8 pixels)")
        self.horizon = int(horizon or task.horizon)
        self.control_rate = task.control_rate
        self.cheap_render = cheap_render
        use_images = self.obs_mode == "image"
        self.offscreen = use_images if offscreen is None else bool(offscreen) or use_images
        suite = import_robosuite()
        from robosuite.controllers import load_composite_controller_config

        self.raw = suite.make(
            task.env_name,
            robots=list(task.robots) if len(task.robots) > 1 else task.robots[0],
            env_configuration=task.env_configuration,
            controller_configs=load_composite_controller_config(controller="BASIC"),
            has_renderer=False,
            has_offscreen_renderer=self.offscreen,
            use_camera_obs=use_images,
            use_object_obs=True,
            camera_names=list(task.cameras),
            camera_heights=self.image_size,
            camera_widths=self.image_size,
            control_freq=task.control_rate,
            horizon=self.horizon,
            ignore_done=True,
            hard_reset=hard_reset,
            reward_shaping=False,
            seed=0 if seed is None else int(seed),
        )
        self._render_sim = None
        if self.offscreen and cheap_render:
            self.raw.set_xml_processor(_no_multisampling)
        self._prepare_rendering()
        self._steps = 0
        self._last_obs: dict[str, np.ndarray] | None = None
        self.obs_spec = self._spec_from(self._convert(self.raw.observation_spec()))
        self.action_spec = action_spec_for(task)
        self.action_dim = task.action_dim

    # -- rendering -------------------------------------------------------------------------------------
    def _prepare_rendering(self) -> None:
        """Apply the cheap-render settings to the current sim's render context (again after a hard reset)."""
        if not (self.offscreen and self.cheap_render) or self._render_sim is self.raw.sim:
            return
        import mujoco

        sim = self.raw.sim
        context = sim._render_context_offscreen
        if sim.model._model.vis.quality.offsamples != 0:  # the first sim was built before our XML processor
            sim.model._model.vis.quality.offsamples = 0
            context.gl_ctx.make_current()  # rebuild the MjrContext on the same GL context (no new GL context)
            context.con.free()
            context._set_mujoco_context_and_buffers()
        context.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._render_sim = sim

    def render(self, camera: str = "agentview", size: int | None = None) -> np.ndarray:
        """Render ``camera`` as an upright uint8 HWC image (needs an offscreen renderer)."""
        if not self.offscreen:
            raise ManipError(
                "this env was made without an offscreen renderer: pass offscreen=True or obs_mode='image'"
            )
        side = int(size or self.image_size)
        try:
            frame = self.raw.sim.render(camera_name=camera, width=side, height=side)
        except ValueError:
            raise ManipError(
                f"unknown camera '{camera}' (cameras: {', '.join(self.raw.sim.model.camera_names)})"
            ) from None
        return np.ascontiguousarray(frame[::-1])  # MuJoCo renders bottom row first

    # -- observations ----------------------------------------------------------------------------------
    def _convert(self, raw: dict) -> dict[str, np.ndarray]:
        obs = {key: np.asarray(raw[key], dtype=np.float32) for key in lowdim_keys(self.task)}
        obs["object"] = np.asarray(raw[self.task.object_obs_key], dtype=np.float32)
        if self.obs_mode == "image":
            for camera in self.task.cameras:
                obs[f"{camera}_image"] = np.ascontiguousarray(raw[f"{camera}_image"], dtype=np.uint8)
        return obs

    @staticmethod
    def _spec_from(obs: dict[str, np.ndarray]) -> Spec:
        features = []
        for key, value in obs.items():
            kind = "rgb" if key.endswith("_image") else "lowdim"
            features.append(FeatureSpec(key, value.shape, str(value.dtype), kind))
        return Spec(tuple(features))

    # -- episode API -----------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """Re-seed robosuite's generator in place (placement samplers and robot noise hold references to it)."""
        self.raw.rng.bit_generator.state = np.random.default_rng(int(seed)).bit_generator.state

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode; with ``seed`` the initial state is a function of the seed alone."""
        if seed is not None:
            self.seed(seed)
        raw = self.raw.reset()
        self._prepare_rendering()
        self._steps = 0
        self._last_obs = self._convert(raw)
        return self._last_obs

    def step(self, action) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        """Apply one action (7-D per robot); returns ``(obs, reward, terminated, truncated, info)``.

        ``terminated`` is robosuite's ``_check_success()``; ``truncated`` is the horizon running out.
        """
        if self._last_obs is None:
            raise ManipError("step() before reset(): call reset(seed=...) first")
        act = np.asarray(action, dtype=np.float64).reshape(-1)
        if act.shape != (self.action_dim,):
            raise ManipError(
                f"action has shape {np.shape(action)}, expected ({self.action_dim},) for {self.task.name}"
            )
        if not np.isfinite(act).all():
            raise ManipError("action contains NaN or inf")
        raw, reward, _done, _info = self.raw.step(np.clip(act, -1.0, 1.0))
        self._steps += 1
        success = self.check_success()
        self._last_obs = self._convert(raw)
        info = {"success": success, "steps": self._steps}
        return self._last_obs, float(reward), success, self._steps >= self.horizon, info

    def check_success(self) -> bool:
        """robosuite's own success check for the current state."""
        return bool(self.raw._check_success())

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def dt(self) -> float:
        return 1.0 / self.control_rate

    def close(self) -> None:
        self.raw.close()


def make_env(
    task: str, obs_mode: str = "lowdim", image_size: int = 84, seed: int | None = None, **options
) -> ManipEnv:
    """Build a :class:`ManipEnv` for the task named ``task`` (options: offscreen, hard_reset, cheap_render, horizon).

    A Meta-World task (``pick-place-v3``, ...) gets a :class:`manip.sim.metaworld.env.MetaWorldEnv` (same
    interface; also ``obs_mode="points"`` and the options num_points, point_colors)."""
    spec = get_task(task)
    if is_metaworld(spec):
        from manip.sim.metaworld.env import make_metaworld_env

        return make_metaworld_env(spec, obs_mode=obs_mode, image_size=image_size, seed=seed, **options)
    check_obs_mode(obs_mode, spec)
    return ManipEnv(spec, obs_mode=obs_mode, image_size=image_size, seed=seed, **options)


def make_env_for(obs_spec, task: str, **options) -> ManipEnv:
    """A :func:`make_env` whose observations match ``obs_spec`` (a policy's): image mode at the spec's camera size
    when it has RGB features, else low-dim (options as for :func:`make_env`)."""
    if is_metaworld(task):
        from manip.sim.metaworld.env import metaworld_env_for

        return metaworld_env_for(obs_spec, get_task(task), **options)
    images = obs_spec.of_kind("rgb")
    obs_mode = "image" if images else "lowdim"
    return make_env(task, obs_mode=obs_mode, image_size=images[0].shape[0] if images else 84, **options)
