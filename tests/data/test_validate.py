"""`manip data validate` / `info` / errors: each problem is one line; the CLI runs in a real subprocess."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from manip.data.validate import validate_store
from tests.cli import manip
from tests.data.conftest import fill_store


@pytest.fixture(scope="module")
def good_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("validate") / "good.zarr"
    fill_store(path, [5, 9, 3], image=True)
    return path


@pytest.fixture
def store_copy(good_store, tmp_path):
    path = tmp_path / "copy.zarr"
    shutil.copytree(good_store, path)
    return path


def set_ends(path: Path, ends) -> None:
    array = zarr.open_array(path / "meta" / "episode_ends", mode="r+")
    array.resize((len(ends),))
    array[:] = np.asarray(ends, np.int64)


def first_chunk_file(path: Path, key: str) -> Path:
    return sorted(p for p in (path / "data" / key / "c").rglob("*") if p.is_file())[0]


BREAKAGES = {
    "ends_not_increasing": (lambda p: set_ends(p, [5, 5, 17]), "not strictly increasing at episode 1"),
    "ends_past_arrays": (lambda p: set_ends(p, [5, 14, 20]), "has 17 steps but episode_ends says 20"),
    "unequal_lengths": (
        lambda p: zarr.open_array(p / "data" / "action", mode="r+").resize((12, 7)),
        "data/action: has 12 steps",
    ),
    "nan": (
        lambda p: zarr.open_array(p / "data" / "robot0_eef_pos", mode="r+").__setitem__((6, 1), np.nan),
        "robot0_eef_pos: 1 NaN/inf value(s), first at step 6",
    ),
    "inf": (
        lambda p: zarr.open_array(p / "data" / "action", mode="r+").__setitem__((16, 0), np.inf),
        "action: 1 NaN/inf value(s), first at step 16",
    ),
    "missing_key": (lambda p: shutil.rmtree(p / "data" / "action"), "data/action: missing key"),
    "corrupt_chunk": (
        lambda p: first_chunk_file(p, "agentview_image").write_bytes(b"garbage" * 10),
        "agentview_image: unreadable chunk(s)",
    ),
    "missing_chunk": (lambda p: first_chunk_file(p, "action").unlink(), "action: 1 chunk(s) missing"),
    "bad_meta_json": (
        lambda p: zarr.open_array(p / "meta" / "episode_meta", mode="r+").__setitem__(1, "{not json"),
        "episode 1 metadata is not valid JSON",
    ),
    "truncated_metadata": (
        lambda p: (p / "meta" / "episode_ends" / "zarr.json").write_text('{"shape": [3'),
        "episode_ends: cannot open",
    ),
    "scalar_data_array": (
        lambda p: zarr.open_group(p, mode="r+")["data"].create_array("scale", shape=(), dtype="f4"),
        "data/scale: a 0-d array",
    ),
    "truncated_episode_meta_metadata": (
        lambda p: (p / "meta" / "episode_meta" / "zarr.json").write_text('{"shape": [3'),
        "episode_meta: cannot open",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_validate_reports_each_problem_on_one_line(store_copy, name):
    breakage, expected = BREAKAGES[name]
    assert validate_store(store_copy).ok
    breakage(store_copy)
    report = validate_store(store_copy)
    assert not report.ok
    assert any(expected in line for line in report.problems), report.problems
    assert all("\n" not in line and str(store_copy) in line for line in report.problems)


def test_cli_validate_exit_codes_and_lines(store_copy, good_store):
    ok = manip("data", "validate", good_store)
    assert ok.returncode == 0 and "valid" in ok.stdout and ok.stderr == ""
    set_ends(store_copy, [5, 5, 17])
    zarr.open_array(store_copy / "data" / "action", mode="r+").__setitem__((2, 2), np.nan)
    bad = manip("data", "validate", store_copy)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 1
    assert len(lines) == 2, bad.stderr
    assert "not strictly increasing" in lines[0] and "NaN" in lines[1]
    assert "Traceback" not in bad.stderr


def test_cli_info_json_matches_contract(good_store):
    result = manip("data", "info", good_store, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info == {
        "zarr_format": 3,
        "num_episodes": 3,
        "num_steps": 17,
        "keys": {
            "action": {"shape": [7], "dtype": "float32"},
            "agentview_image": {"shape": [84, 84, 3], "dtype": "uint8"},
            "robot0_eef_pos": {"shape": [3], "dtype": "float32"},
        },
        "episode_lengths": [5, 9, 3],
        "episode_success": [True, False, True],
    }
    table = manip("data", "info", good_store)
    assert table.returncode == 0 and "episodes: 3" in table.stdout and "agentview_image" in table.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["data", "info", "/no/such/store.zarr"], "no such store"),
        (["data", "validate", "/no/such/store.zarr"], "no such store"),
        (["data", "info", "x.zarr", "--bogus"], "unrecognized arguments"),
        (["data", "info"], "required: PATH"),
        (["data", "convert", "/no/such/file.hdf5", "out.zarr"], "no such file"),
    ],
)
def test_cli_bad_input_is_one_line(args, expected):
    result = manip(*args)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_cli_info_on_unreadable_episode_metadata_names_the_array(store_copy):
    (store_copy / "meta" / "episode_meta" / "zarr.json").write_text('{"shape": [3')
    for command in ("info", "validate"):
        result = manip("data", command, store_copy)
        assert result.returncode == (2 if command == "info" else 1)
        assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr, result.stderr
        assert f"{store_copy}/meta/episode_meta: cannot open" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2]", "episode 1 metadata is not a JSON object"),
        ('{"success": "yes"}', "episode 1 success is 'yes'"),
    ],
)
def test_cli_info_and_convert_on_bad_episode_metadata_are_one_line(store_copy, tmp_path, text, expected):
    zarr.open_array(store_copy / "meta" / "episode_meta", mode="r+")[1] = text
    for args in (["info", store_copy, "--json"], ["convert", store_copy, tmp_path / "out.zarr"]):
        result = manip("data", *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert f"{store_copy}/meta/episode_meta: {expected}" in result.stderr
    assert any(expected in line for line in validate_store(store_copy).problems)


def test_cli_info_on_a_file_that_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = manip("data", "info", tmp_path / "notes.txt")
    assert result.returncode == 2 and "not a Zarr store" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_all_fill_value_chunks_are_written_so_validate_passes(tmp_path):
    from manip.data.store import EpisodeStore

    path = tmp_path / "zeros.zarr"
    episode = {"action": np.zeros((6, 7), np.float32), "intervention": np.zeros(6, bool)}
    EpisodeStore.create(path).add_episode(episode)
    EpisodeStore.open(path, mode="a").add_episode(episode)  # reopened arrays keep writing empty chunks
    report = validate_store(path)
    assert report.ok, report.problems
    first_chunk_file(path, "intervention").unlink()
    assert any("intervention: 1 chunk(s) missing" in p for p in validate_store(path).problems)
