"""``MetaWorldEnv``: one Meta-World v3 task behind the interface of :class:`manip.sim.env.ManipEnv`.

``reset(seed=)`` → obs, ``step(action)`` → ``(obs, reward, terminated, truncated, info)``, ``obs_spec``,
``action_spec``, ``render(camera)``, ``control_rate``, ``horizon``, ``dt``, ``task``, ``steps``, ``close()``.

Actions are 4-D: the hand's position delta (3 values in [-1, 1], 1 cm per unit; the orientation is fixed) and
the gripper (-1 open, +1 closed). Observations (a dict of numpy arrays):

* ``robot0_eef_pos`` (3,): the hand position; ``robot0_gripper_qpos`` (2,): the two finger joints;
  ``object`` (17,): Meta-World's object state (positions + quaternions of up to two objects, 14 values) and the
  goal position (3) — the goal-observable state of the papers' low-dim baselines.
* image mode: ``corner2_image`` (``image_size``² uint8 RGB, upright).
* points mode: ``point_cloud`` (``num_points``, 3) float32 in the robot base frame (``(num_points, 6)`` with
  ``point_colors``: xyz + RGB in [0, 1]), from the ``corner2`` camera's depth (128×128, the camera placed as
  MP1 places it), cropped to :data:`WORKSPACE` and farthest-point sampled
  (:func:`manip.real.client.points.point_cloud`, the same code the real cameras use).

Seeding: Meta-World draws each episode's object and goal positions from the env's ``np_random`` when
``seeded_rand_vec`` is on; ``reset(seed=s)`` re-seeds it with ``s`` first, so the initial state is a function
of ``s`` alone (and of nothing drawn before). ``terminated`` is Meta-World's ``info["success"]``.
"""

from __future__ import annotations

import warnings

import numpy as np

from manip.core.errors import ManipError, require
from manip.core.specs import FeatureSpec, Spec
from manip.real.client.points import DEFAULT_NUM_POINTS, POINT_CLOUD_KEY, intrinsics_from_fovy, point_cloud
from manip.sim.metaworld.tasks import ACTION_DIM, CAMERA, MetaWorldTaskSpec
from manip.sim.tasks import check_obs_mode

POINT_IMAGE_SIZE = 128
"""Side of the depth image the point cloud is computed from (DP3 / MP1)."""
CAMERA_POSITION = (0.6, 0.295, 0.8)
"""Where MP1 puts the ``corner2`` camera (world frame, metres) for its point clouds and videos."""
WORKSPACE = ((-0.8, -0.2, 0.005), (0.8, 1.2, 1.0))
"""Crop box in the robot base frame (metres): the table top and everything above it (the table plane itself,
the floor and the far walls are dropped)."""
CAMERA_ALIASES = {"agentview": CAMERA}
"""Camera names other parts of the code use for "the task camera" (e.g. eval's videos)."""
SPEC_KINDS = {POINT_CLOUD_KEY: "points"}
METAWORLD_ACTION = {
    "space": "ee_delta",
    "frame": "base",
    "position_scale": 0.01,
    "rotation": "none (fixed hand orientation)",
    "gripper": "last dim, -1 open, +1 closed",
}
"""What a Meta-World action means (the counterpart of :data:`manip.real.client.sources.ROBOSUITE_OSC_ACTION`)."""


def goal_observable_class(env_name: str):
    """Meta-World's goal-observable env class for ``env_name`` (picks the GL backend before mujoco loads)."""
    from manip.sim.render import choose_gl_backend

    choose_gl_backend()
    env_dict = require("metaworld.env_dict", "metaworld")
    try:
        return env_dict.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{env_name}-goal-observable"]
    except KeyError:
        raise ManipError(f"Meta-World has no env '{env_name}'") from None


class MetaWorldEnv:
    """One Meta-World task; see the module docstring."""

    def __init__(
        self,
        task: MetaWorldTaskSpec,
        obs_mode: str = "lowdim",
        image_size: int = 84,
        seed: int | None = None,
        offscreen: bool | None = None,
        horizon: int | None = None,
        num_points: int = DEFAULT_NUM_POINTS,
        point_colors: bool = False,
        hard_reset: bool = False,
        cheap_render: bool = True,
    ):
        import mujoco

        self.task = task
        self.obs_mode = check_obs_mode(obs_mode, task)
        self.image_size = int(image_size)
        if self.image_size < 8:
            raise ManipError(f"image size {image_size} is too small (need >= 8 pixels)")
        if num_points < 1:
            raise ManipError(f"num_points must be >= 1, got {num_points}")
        self.num_points, self.point_colors = int(num_points), bool(point_colors)
        self.horizon = int(horizon or task.horizon)
        self.control_rate = task.control_rate
        self.offscreen = bool(offscreen) or self.obs_mode != "lowdim"
        self.cheap_render = cheap_render
        cls = goal_observable_class(task.env_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.raw = cls(seed=0 if seed is None else int(seed))  # restores the global numpy state it seeds
        self.raw._freeze_rand_vec = False
        self.raw.seeded_rand_vec = True  # object/goal positions come from raw.np_random (see seed())
        self.raw.max_path_length = self.horizon
        model = self.raw.model
        self.camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, CAMERA)
        model.cam_pos[self.camera_id] = CAMERA_POSITION
        if cheap_render:  # no multisampling: software GL renders several times faster
            model.vis.quality.offsamples = 0
        self._fingers = [model.joint(name).qposadr[0] for name in ("r_close", "l_close")]
        self._base = model.body("base").id
        self._renderers: dict[tuple[int, bool], object] = {}
        self._steps = 0
        self._raw_obs: np.ndarray | None = None
        self._last_obs: dict[str, np.ndarray] | None = None
        self.obs_spec = self._spec_from(self.reset(seed=0 if seed is None else int(seed)))
        self._last_obs = None
        self.action_spec = Spec((FeatureSpec("action", (ACTION_DIM,)),))
        self.action_dim = ACTION_DIM
        self.action_semantics = dict(METAWORLD_ACTION)

    # -- rendering -------------------------------------------------------------------------------------
    def _renderer(self, size: int, depth: bool):
        import mujoco

        key = (size, depth)
        if key not in self._renderers:
            renderer = mujoco.Renderer(self.raw.model, size, size)
            if depth:
                renderer.enable_depth_rendering()
            elif self.cheap_render:  # no shadows or reflections
                renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
                renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            self._renderers[key] = renderer
        return self._renderers[key]

    def _camera(self, camera: str) -> int:
        import mujoco

        name = CAMERA_ALIASES.get(camera, camera)
        camera_id = mujoco.mj_name2id(self.raw.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if camera_id < 0:
            names = [self.raw.model.camera(i).name for i in range(self.raw.model.ncam)]
            raise ManipError(f"unknown camera '{camera}' (cameras: {', '.join(names)})")
        return camera_id

    def render(self, camera: str = CAMERA, size: int | None = None) -> np.ndarray:
        """Render ``camera`` (``agentview`` means the task camera) as an upright uint8 HWC image."""
        renderer = self._renderer(int(size or self.image_size), depth=False)
        renderer.update_scene(self.raw.data, camera=self._camera(camera))
        return np.ascontiguousarray(renderer.render())

    def depth(self, camera: str = CAMERA, size: int = POINT_IMAGE_SIZE) -> np.ndarray:
        """Metric depth (metres along the optical axis) of ``camera``, ``(size, size)`` float32, upright."""
        renderer = self._renderer(size, depth=True)
        renderer.update_scene(self.raw.data, camera=self._camera(camera))
        return np.asarray(renderer.render(), dtype=np.float32)

    def camera_to_base(self, camera: str = CAMERA) -> np.ndarray:
        """4×4 pose of ``camera``'s optical frame (x right, y down, z forward) in the robot base frame."""
        data, camera_id = self.raw.data, self._camera(camera)
        world_cam = np.eye(4)
        # MuJoCo cameras look along -z with y up: flip y and z for the optical (OpenCV) convention
        world_cam[:3, :3] = data.cam_xmat[camera_id].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        world_cam[:3, 3] = data.cam_xpos[camera_id]
        world_base = np.eye(4)
        world_base[:3, :3] = data.xmat[self._base].reshape(3, 3)
        world_base[:3, 3] = data.xpos[self._base]
        return np.linalg.inv(world_base) @ world_cam

    def point_cloud(self) -> np.ndarray:
        """The current ``(num_points, 3|6)`` point cloud in the base frame (see the module docstring)."""
        size = POINT_IMAGE_SIZE
        fovy = float(self.raw.model.cam_fovy[self.camera_id])
        colors = self.render(CAMERA, size) if self.point_colors else None
        return point_cloud(
            self.depth(CAMERA, size), intrinsics_from_fovy(fovy, size, size), self.camera_to_base(CAMERA),
            *WORKSPACE, count=self.num_points, colors=colors,
        )  # fmt: skip

    # -- observations ----------------------------------------------------------------------------------
    def _convert(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        raw = np.asarray(raw, dtype=np.float64)
        obs = {
            "robot0_eef_pos": raw[0:3].astype(np.float32),
            "robot0_gripper_qpos": self.raw.data.qpos[self._fingers].astype(np.float32),
            "object": np.concatenate([raw[4:18], raw[36:39]]).astype(np.float32),
        }
        if self.obs_mode == "image":
            obs[f"{CAMERA}_image"] = self.render(CAMERA, self.image_size)
        elif self.obs_mode == "points":
            obs[POINT_CLOUD_KEY] = self.point_cloud()
        return obs

    @staticmethod
    def _spec_from(obs: dict[str, np.ndarray]) -> Spec:
        features = []
        for key, value in obs.items():
            kind = "rgb" if key.endswith("_image") else SPEC_KINDS.get(key, "lowdim")
            features.append(FeatureSpec(key, value.shape, str(value.dtype), kind))
        return Spec(tuple(features))

    @property
    def raw_obs(self) -> np.ndarray:
        """Meta-World's own 39-D observation of the current state (what its scripted policies read)."""
        if self._raw_obs is None:
            raise ManipError("no observation yet: call reset(seed=...) first")
        return self._raw_obs

    # -- episode API -----------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """Re-seed the generator Meta-World draws object and goal positions from."""
        self.raw.seed(int(seed))

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode; with ``seed`` the initial state is a function of the seed alone."""
        if seed is not None:
            self.seed(seed)
        raw, _info = self.raw.reset()
        self._steps = 0
        self._raw_obs = np.asarray(raw, dtype=np.float64)
        self._last_obs = self._convert(raw)
        return self._last_obs

    def step(self, action) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        """Apply one 4-D action; returns ``(obs, reward, terminated, truncated, info)`` (terminated = success)."""
        if self._last_obs is None:
            raise ManipError("step() before reset(): call reset(seed=...) first")
        act = np.asarray(action, dtype=np.float64).reshape(-1)
        if act.shape != (ACTION_DIM,):
            raise ManipError(
                f"action has shape {np.shape(action)}, expected ({ACTION_DIM},) for {self.task.name}"
            )
        if not np.isfinite(act).all():
            raise ManipError("action contains NaN or inf")
        if self._steps >= self.horizon:
            raise ManipError(f"step() after the horizon ({self.horizon} steps): call reset(seed=...)")
        raw, reward, _terminated, _truncated, info = self.raw.step(np.clip(act, -1.0, 1.0).astype(np.float32))
        self._steps += 1
        success = bool(info.get("success", 0.0))
        self._raw_obs = np.asarray(raw, dtype=np.float64)
        self._last_obs = self._convert(raw)
        info = {"success": success, "steps": self._steps}
        return self._last_obs, float(reward), success, self._steps >= self.horizon, info

    def check_success(self) -> bool:
        """Meta-World's success check for the current state."""
        _reward, info = self.raw.evaluate_state(self.raw_obs, np.zeros(ACTION_DIM, dtype=np.float32))
        return bool(info.get("success", 0.0))

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def dt(self) -> float:
        return 1.0 / self.control_rate

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self.raw.close()


def make_metaworld_env(task: MetaWorldTaskSpec, obs_mode: str = "lowdim", image_size: int = 84, **options):
    """A :class:`MetaWorldEnv` (options: seed, offscreen, horizon, num_points, point_colors, hard_reset,
    cheap_render)."""
    return MetaWorldEnv(task, obs_mode=obs_mode, image_size=image_size, **options)


def metaworld_env_for(obs_spec: Spec, task: MetaWorldTaskSpec, **options) -> MetaWorldEnv:
    """A :class:`MetaWorldEnv` whose observations match a policy's ``obs_spec``: points mode with the spec's
    point count and width when it has a point cloud, else image mode at its camera size, else low-dim."""
    clouds = obs_spec.of_kind("points")
    images = obs_spec.of_kind("rgb")
    if clouds:
        count, width = clouds[0].shape
        return MetaWorldEnv(task, "points", num_points=count, point_colors=width == 6, **options)
    if images:
        return MetaWorldEnv(task, "image", image_size=images[0].shape[0], **options)
    return MetaWorldEnv(task, "lowdim", **options)
