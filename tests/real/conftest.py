"""Fixtures for the serving tests: real ``manip serve`` processes on 127.0.0.1 with free ports."""

from __future__ import annotations

import pytest

from manip.real.launch import ServerProcess, start_server


@pytest.fixture(scope="module")
def lowdim_server():
    """``manip serve --synthetic lowdim`` with 50 ms of simulated model time (so requests overlap and batch)."""
    with start_server(
        ["--synthetic", "lowdim", "--port", "0", "--synthetic-ms", "50", "--batch-wait-ms", "20"]
    ) as srv:
        yield srv


@pytest.fixture
def server_factory():
    """Start servers with any arguments; all are stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict | None = None) -> ServerProcess:
        srv = start_server(list(args), env=env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A real (untrained, tiny) low-dim flow policy saved as a checkpoint directory, with the synthetic spec."""
    import numpy as np

    from manip.data.normalizer import Normalizer
    from manip.policies.config import POLICY_TYPES, parse_policy_config
    from manip.real.synthetic import synthetic_metadata

    meta = synthetic_metadata("lowdim", horizon=8)
    rng = np.random.default_rng(0)
    data = {f.name: rng.normal(size=(64, *f.shape)).astype(np.float32) for f in meta.obs_spec.features}
    data["action"] = rng.uniform(-1, 1, size=(64, 7)).astype(np.float32)
    normalizer = Normalizer.fit([data], dict.fromkeys(data, "minmax"))
    config = parse_policy_config(
        {
            "obs_keys": meta.obs_spec.names,
            "n_obs_steps": 2,
            "horizon": 8,
            "n_action_steps": 4,
            "backbone": {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16},
            "head": {"name": "flow", "default_steps": 4},
        }
    )
    policy = POLICY_TYPES.get(config.type).cls(config, meta.obs_spec, meta.action_spec, normalizer)
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    policy.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoint_server(tiny_checkpoint):
    """``manip serve --checkpoint`` on the tiny real policy."""
    with start_server(["--checkpoint", str(tiny_checkpoint), "--port", "0", "--batch-wait-ms", "20"]) as srv:
        yield srv


@pytest.fixture(scope="session")
def vla_checkpoint(tmp_path_factory):
    """A real (untrained, tiny) VLA checkpoint on the low-dim synthetic spec: it takes a language instruction."""
    import numpy as np

    from manip.data.normalizer import Normalizer
    from manip.policies.config import POLICY_TYPES, parse_policy_config
    from manip.real.synthetic import synthetic_metadata

    meta = synthetic_metadata("lowdim", horizon=8)
    rng = np.random.default_rng(0)
    data = {f.name: rng.normal(size=(64, *f.shape)).astype(np.float32) for f in meta.obs_spec.features}
    data["action"] = rng.uniform(-1, 1, size=(64, 7)).astype(np.float32)
    normalizer = Normalizer.fit([data], dict.fromkeys(data, "minmax"))
    config = parse_policy_config(
        {
            "type": "vla",
            "obs_keys": meta.obs_spec.names,
            "n_obs_steps": 2,
            "horizon": 8,
            "n_action_steps": 4,
            "encoders": {"language": {"max_length": 16}},
            "context": {"d_model": 32, "n_layers": 1, "n_heads": 4, "readouts": 2},
            "backbone": {"name": "mlp"},
            "head": {"name": "flow", "default_steps": 2},
        }
    )
    policy = POLICY_TYPES.get(config.type).cls(config, meta.obs_spec, meta.action_spec, normalizer)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-vla"
    policy.save_pretrained(path)
    return path
