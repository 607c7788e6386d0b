"""`manip sweep`: cells in parallel, resume skips finished cells, table + plot, Ray dispatch, bad sweep files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.cli import manip, read_json

SWEEP = """
tasks: [Lift]
policies: [expert]
seeds: [0, 50]
episodes: 1
settings:
  - name: default
  - name: short
    horizon: 3
    executor: ensemble
workers: 2
"""


@pytest.fixture
def sweep_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    return path


def _rows(out):
    with (out / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_sweep_runs_cells_and_resume_skips_finished(sweep_file, tmp_path):
    out = tmp_path / "out"
    first = manip("sweep", str(sweep_file), "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "4 cell(s), ran 4, skipped 0" in first.stdout
    rows = {(r["seed"], r["setting"]): r for r in _rows(out)}
    assert set(rows) == {("0", "default"), ("0", "short"), ("50", "default"), ("50", "short")}
    assert rows[("0", "default")]["successes"] == "1" and rows[("0", "short")]["successes"] == "0"  # 3 steps
    assert (out / "summary.md").read_text().count("| Lift | expert |") == 4
    short = read_json(out / "cells" / "Lift__expert__seed0__short" / "results.json")
    assert short["executor"] == {"mode": "ensemble"}
    assert short["per_episode"][0]["chunks"] == 3  # ensembling requests a chunk every tick
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    kept = out / "cells" / "Lift__expert__seed0__default" / "results.json"
    kept_text = kept.read_text()
    (out / "cells" / "Lift__expert__seed50__short" / "results.json").unlink()  # an unfinished cell
    second = manip("sweep", str(sweep_file), "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert "ran 1, skipped 3" in second.stdout
    assert kept.read_text() == kept_text
    assert read_json(out / "cells" / "Lift__expert__seed50__short" / "results.json")["seeds"] == [50]


@pytest.mark.slow
def test_sweep_on_a_local_ray_instance(sweep_file, tmp_path):
    out = tmp_path / "ray"
    result = manip("sweep", str(sweep_file), "seeds=[0]", "--out", str(out), "--ray", "local")
    assert result.returncode == 0, result.stderr
    assert "2 cell(s), ran 2" in result.stdout
    assert {r["setting"]: r["successes"] for r in _rows(out)} == {"default": "1", "short": "0"}


@pytest.mark.slow
def test_sweep_through_submitit(sweep_file, tmp_path):
    """--slurm goes through submitit; without SLURM on this machine submitit runs the jobs as local processes."""
    out = tmp_path / "slurm"
    result = manip("sweep", str(sweep_file), "seeds=[0]", "--out", str(out), "--slurm")
    assert result.returncode == 0, result.stderr
    assert {r["setting"]: (r["successes"], r["errors"]) for r in _rows(out)} == {
        "default": ("1", "0"),
        "short": ("0", "0"),
    }
    assert (out / "slurm").is_dir()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: [Lift]\nepisodes: 1\nbogus: 3\n", "bogus: unknown key"),
        ("tasks: [Lfit]\n", "unknown task 'Lfit'"),
        ("tasks: [Lift]\npolicies: [/nonexistent/ckpt]\n", "neither 'expert' nor a checkpoint"),
        ("tasks: [Lift]\nepisodes: 0\n", "episodes"),
        ("tasks: [Lift]\nsettings: [{name: a, executor: fast}]\n", "executor"),
        ("tasks: [Lift]\nsettings: [{name: a, ensemble_every: 2}]\n", "only with executor: ensemble"),
    ],
)
def test_bad_sweep_file_one_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = manip("sweep", str(path), "--out", str(tmp_path / "o"))
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("path", sorted(Path("configs/sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_file_validates(path):
    """Keys and settings are checked (the checkpoints they name need not exist here)."""
    from manip.core.config import load_config
    from manip.sim.sweep import SweepConfig

    config = load_config(SweepConfig, path)
    assert config.tasks and len({s.name for s in config.settings}) == len(config.settings)
