"""Normalizer: streaming statistics, every mode, numpy and torch alike, JSON round trip, fail-closed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manip.core.errors import ManipError
from manip.data.normalizer import Normalizer


def batches(data: dict[str, np.ndarray], size: int):
    n = len(next(iter(data.values())))
    for start in range(0, n, size):
        yield {k: v[start : start + size] for k, v in data.items()}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return {
        "action": rng.uniform(-3, 5, (1000, 7)).astype(np.float32),
        "pos": (rng.normal(2.0, 0.5, (1000, 3))).astype(np.float32),
        "const": np.full((1000, 2), 4.0, np.float32),
        "image": rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8),
    }


def test_streaming_stats_match_full_data(data):
    modes = {"action": "minmax", "pos": "meanstd", "const": "minmax"}
    streamed = Normalizer.fit(batches(data, 37), modes)
    stats = streamed.features["pos"].stats
    np.testing.assert_allclose(stats["mean"], data["pos"].mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["std"], data["pos"].std(0), rtol=1e-4)
    np.testing.assert_allclose(stats["min"], data["pos"].min(0), rtol=1e-6)
    np.testing.assert_allclose(streamed.features["action"].stats["max"], data["action"].max(0), rtol=1e-6)
    one_batch = Normalizer.fit([data], modes)
    for key in modes:
        np.testing.assert_allclose(streamed.features[key].scale, one_batch.features[key].scale, rtol=1e-5)


def test_modes_map_to_expected_ranges(data):
    norm = Normalizer.fit(
        batches(data, 100),
        {"action": "minmax", "pos": "meanstd", "const": "minmax", "image": "image"},
    )
    out = norm.normalize(data)
    assert out["action"].min() == pytest.approx(-1, abs=1e-5) and out["action"].max() == pytest.approx(
        1, abs=1e-5
    )
    np.testing.assert_allclose(out["pos"].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(out["pos"].std(0), 1, atol=1e-3)
    np.testing.assert_allclose(out["const"], 0)  # tiny range floored: centred, never divided by ~0
    assert out["image"].dtype == np.float32
    assert out["image"].min() >= -1 and out["image"].max() <= 1
    image = np.zeros((8, 8, 3), np.uint8)
    image[0, 0] = [0, 255, 51]
    np.testing.assert_allclose(norm.normalize({"image": image})["image"][0, 0], [-1.0, 1.0, -0.6], atol=1e-6)
    back = norm.unnormalize(out)
    for key in ("action", "pos", "const"):
        np.testing.assert_allclose(back[key], data[key], rtol=1e-5, atol=1e-5)


def test_quantile_mode_is_robust_to_outliers():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 1, (5000, 1)).astype(np.float32)
    values[0] = 1000.0
    norm = Normalizer.fit([{"x": values}], {"x": "quantile"}, quantiles=(0.01, 0.99))
    out = norm.normalize({"x": values[1:]})["x"]
    assert np.quantile(out, 0.5) == pytest.approx(0, abs=0.05)
    assert np.mean(np.abs(out) <= 1.0) > 0.97
    minmax = Normalizer.fit([{"x": values}], {"x": "minmax"}).normalize({"x": values[1:]})["x"]
    assert minmax.max() < -0.99  # the outlier squashes minmax, not quantile


def test_torch_and_numpy_agree(data):
    torch = pytest.importorskip("torch")
    norm = Normalizer.fit([data], {"action": "minmax", "pos": "meanstd"})
    batch = {"action": data["action"][:5].reshape(1, 5, 7), "pos": data["pos"][:5]}
    numpy_out = norm.normalize(batch)
    torch_out = norm.normalize({k: torch.from_numpy(v) for k, v in batch.items()})
    for key in batch:
        assert isinstance(torch_out[key], torch.Tensor)
        np.testing.assert_allclose(torch_out[key].numpy(), numpy_out[key], rtol=1e-6)
        np.testing.assert_allclose(norm.unnormalize(torch_out)[key].numpy(), batch[key], rtol=1e-5, atol=1e-5)


def test_json_round_trip_is_exact(tmp_path, data):
    norm = Normalizer.fit(
        [data], {"action": "quantile", "pos": "meanstd", "image": "image", "const": "identity"}
    )
    path = tmp_path / "normalizer.json"
    norm.save(path)
    again = Normalizer.load(path)
    assert again.keys() == norm.keys()
    json.loads(path.read_text())  # plain JSON
    for key in ("action", "pos", "const"):
        np.testing.assert_array_equal(
            again.normalize({key: data[key]})[key], norm.normalize({key: data[key]})[key]
        )


def test_fail_closed_on_names_and_shapes(data):
    norm = Normalizer.fit([data], {"action": "minmax", "pos": "meanstd"})
    with pytest.raises(ManipError, match="no statistics for 'gripper'"):
        norm.normalize({"gripper": np.zeros((2, 2))})
    with pytest.raises(ManipError, match="'action' has shape"):
        norm.normalize({"action": np.zeros((4, 6))})
    with pytest.raises(ManipError, match="'pos' has shape"):
        norm.unnormalize({"pos": np.zeros(())})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: Normalizer.fit([d], {"action": "zscore"}), "unknown mode"),
        (lambda d: Normalizer.fit([d], {"missing": "minmax"}), "no data for key"),
        (lambda d: Normalizer.fit([{"a": np.array([[np.nan]])}], {"a": "minmax"}), "NaN"),
        (
            lambda d: Normalizer.fit([{"a": np.zeros((2, 3))}, {"a": np.zeros((2, 4))}], {"a": "minmax"}),
            "feature shape",
        ),
        (lambda d: Normalizer.from_json({"features": {"a": {"mode": "minmax"}}}), "malformed"),
        (
            lambda d: Normalizer.from_json(
                {"features": {"a": {"mode": "minmax", "shape": [2], "scale": [1], "offset": [0, 0]}}}
            ),
            "shape",
        ),
        (lambda d: Normalizer.from_json([1, 2]), "features"),
    ],
)
def test_bad_input_is_one_line_error(data, call, message):
    with pytest.raises(ManipError, match=message) as info:
        call(data)
    assert "\n" not in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(["minmax", "meanstd", "quantile", "identity"]),
    rows=st.integers(1, 40),
    dim=st.integers(1, 5),
    scale=st.floats(1e-6, 1e3),
    seed=st.integers(0, 1000),
)
def test_unnormalize_inverts_normalize(mode, rows, dim, scale, seed):
    data = (np.random.default_rng(seed).normal(size=(rows, dim)) * scale).astype(np.float64)
    norm = Normalizer.from_json(Normalizer.fit([{"x": data}], {"x": mode}).to_json())
    out = norm.normalize({"x": data})["x"]
    assert np.isfinite(out).all()
    if mode == "minmax":
        assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6
    np.testing.assert_allclose(norm.unnormalize({"x": out})["x"], data, rtol=1e-4, atol=1e-4 * scale)
