"""`manip sweep`: cells in parallel, resume, cell identity, failed cells, Ctrl-C, pooled table + plot, Ray, SLURM."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import ROOT, manip, read_json
from tests.sim.tiny_checkpoint import lift_checkpoint

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


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two different tiny Lift checkpoints in the usual layout: runA/checkpoint, runB/checkpoint."""
    root = tmp_path_factory.mktemp("runs")
    return [lift_checkpoint(root / run / "checkpoint", seed=i) for i, run in enumerate(("runA", "runB"))]


def _rows(out):
    with (out / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


def _cell_dir(out, prefix):
    (found,) = sorted((out / "cells").glob(prefix + "__*"))
    return found


def _write(tmp_path, text, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_sweep_runs_cells_and_resume_skips_finished(sweep_file, tmp_path):
    out = tmp_path / "out"
    first = manip("sweep", str(sweep_file), "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "4 cell(s), ran 4, skipped 0" in first.stdout
    rows = {(r["seed"], r["setting"]): r for r in _rows(out)}
    assert set(rows) == {("0", "default"), ("0", "short"), ("50", "default"), ("50", "short")}
    assert rows[("0", "default")]["successes"] == "1" and rows[("0", "short")]["successes"] == "0"  # 3 steps
    assert (out / "summary.md").read_text().count("| Lift | expert |") == 4 + 2  # 4 cells, 2 pooled settings
    assert "Lift" in (out / "report.html").read_text()  # the sweep's page
    assert first.stdout.startswith("| task | policy | seed | setting |")  # the table is printed at the end
    short = read_json(_cell_dir(out, "Lift__expert__seed0__short") / "results.json")
    assert short["executor"] == {"mode": "ensemble"}
    assert short["per_episode"][0]["chunks"] == 3  # ensembling requests a chunk every tick
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    kept = _cell_dir(out, "Lift__expert__seed0__default") / "results.json"
    kept_text = kept.read_text()
    (_cell_dir(out, "Lift__expert__seed50__short") / "results.json").unlink()  # an unfinished cell
    second = manip("sweep", str(sweep_file), "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert "ran 1, skipped 3" in second.stdout
    assert kept.read_text() == kept_text
    assert read_json(_cell_dir(out, "Lift__expert__seed50__short") / "results.json")["seeds"] == [50]


@pytest.mark.slow
def test_changed_settings_run_again(sweep_file, tmp_path):
    """Cells are found by their whole identity: more episodes or another horizon are new cells, not old numbers."""
    out = tmp_path / "out"
    assert manip("sweep", str(sweep_file), "seeds=[0]", "--out", str(out)).returncode == 0
    more = manip("sweep", str(sweep_file), "seeds=[0]", "episodes=2", "--out", str(out))
    assert more.returncode == 0, more.stderr
    assert "2 cell(s), ran 2, skipped 0" in more.stdout
    assert [r["episodes"] for r in _rows(out)] == ["2", "2"]
    longer = sweep_file.read_text().replace("horizon: 3", "horizon: 4")
    again = manip("sweep", str(_write(tmp_path, longer, "longer.yaml")), "seeds=[0]", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "ran 1, skipped 1" in again.stdout  # only the setting whose horizon changed
    short = next(r for r in _rows(out) if r["setting"] == "short")
    assert read_json(Path(out, "cells", short["cell"], "results.json"))["per_episode"][0]["steps"] == 4


@pytest.mark.slow
def test_two_checkpoints_in_the_usual_layout_are_two_cells(two_runs, tmp_path):
    text = (
        f"tasks: [Lift]\npolicies: [{two_runs[0]}, {two_runs[1]}]\nepisodes: 1\nsettings: [{{horizon: 8}}]\n"
    )
    out = tmp_path / "out"
    result = manip("sweep", str(_write(tmp_path, text)), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = _rows(out)
    assert [r["policy"] for r in rows] == ["runA/checkpoint", "runB/checkpoint"]
    assert len({r["cell"] for r in rows}) == 2 and len({r["checkpoint_id"] for r in rows}) == 2
    ids = {read_json(Path(out, "cells", r["cell"], "results.json"))["checkpoint_id"] for r in rows}
    assert ids == {r["checkpoint_id"] for r in rows}  # each cell evaluated its own weights
    assert (
        "| Lift | runA/checkpoint | 0 |" in result.stdout
        and "| Lift | runB/checkpoint | 0 |" in result.stdout
    )


@pytest.mark.slow
def test_a_failed_cell_is_an_error_exits_non_zero_and_runs_again(two_runs, tmp_path):
    """A Lift checkpoint on PickPlaceCan: its observations do not fit, so the cell fails (not a real 0/1)."""
    text = (
        f"tasks: [Lift, PickPlaceCan]\npolicies: [{two_runs[0]}]\nepisodes: 1\nsettings: [{{horizon: 4}}]\n"
    )
    path = _write(tmp_path, text)
    out = tmp_path / "out"
    first = manip("sweep", str(path), "--out", str(out))
    assert first.returncode == 1, first.stderr
    assert "2 cell(s), ran 2, skipped 0 finished, 1 failed" in first.stdout
    rows = {r["task"]: r for r in _rows(out)}
    assert rows["Lift"]["error"] == "" and rows["Lift"]["successes"] == "0"
    can = rows["PickPlaceCan"]
    assert can["successes"] == "" and can["success_rate"] == ""  # no made-up numbers
    assert "episode(s) failed" in can["error"] and "'object' has shape" in can["error"]
    assert "\n" not in can["error"]
    line = next(x for x in first.stdout.splitlines() if x.startswith("| PickPlaceCan"))
    assert "'object' has shape" in line and "0/1" not in line
    second = manip("sweep", str(path), "--out", str(out))
    assert second.returncode == 1
    assert "ran 1, skipped 1 finished, 1 failed" in second.stdout  # the failed cell is retried, not cached


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_writes_the_partial_summary(tmp_path):
    """SIGINT to the sweep's process group (as Ctrl-C does): no new cells, no tracebacks, a partial summary."""
    text = "tasks: [Lift]\npolicies: [expert]\nseeds: [0, 100, 200]\nepisodes: 40\nworkers: 1\n"
    out = tmp_path / "out"
    env = dict(os.environ, MANIP_NO_PROGRESS="1")
    command = [
        sys.executable,
        "-P",
        "-m",
        "manip.cli.main",
        "sweep",
        str(_write(tmp_path, text)),
        "--out",
        str(out),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a foreground command, as at a terminal: a suite started in the background (`cmd &` in a script) runs
        # with SIGINT ignored, which children inherit, and then no Ctrl-C reaches the sweep at all
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        started = out / "cells"
        deadline = time.monotonic() + 120
        while not list(started.glob("*/results.json")) and time.monotonic() < deadline:
            # wait until the first cell is inside its episodes (its env and renderer exist)
            if list(started.glob("*/cell.json")):
                time.sleep(3)
                break
            time.sleep(0.2)
        assert process.poll() is None, "the sweep finished before it could be interrupted"
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "MjRenderContext" not in stderr, stderr
    assert len(list((out / "cells").iterdir())) == 1  # no queued cell started after Ctrl-C
    assert "finished" not in read_json(next((out / "cells").iterdir()) / "cell.json")
    assert [r["error"] for r in _rows(out)] == ["not run (interrupted)"] * 3
    assert "(interrupted)" in stdout and "| Lift | expert | 0 |" in stdout


def test_cells_pool_seeds_per_setting_with_a_titled_plot(tmp_path):
    from PIL import Image

    from manip.sim.stats import wilson_interval
    from manip.sim.sweep_report import pool_seeds, write_reports

    def row(seed, setting, successes, error=""):
        return {
            "cell": f"c{seed}{setting}", "task": "Lift", "policy": "expert", "checkpoint_id": "expert",
            "seed": seed, "setting": setting, "executor": "", "delay_ms": 0.0, "jitter_ms": 0.0, "episodes": 10,
            "successes": None if error else successes, "success_rate": None if error else successes / 10,
            "ci_low": 0.0, "ci_high": 1.0, "held_fraction": 0.0, "errors": 0, "error": error,
        }  # fmt: skip

    rows = [row(0, "a", 9), row(1, "a", 5), row(0, "b", 2), row(1, "b", 0, error="boom")]
    groups = pool_seeds(rows)
    assert [(g["setting"], g["seeds"], g["episodes"], g["successes"], g["failed"]) for g in groups] == [
        ("a", [0, 1], 20, 14, 0),
        ("b", [0], 10, 2, 1),
    ]
    assert (groups[0]["ci_low"], groups[0]["ci_high"]) == wilson_interval(14, 20)
    text = write_reports(rows, tmp_path)
    assert "| Lift | expert | a | 0, 1 | 14/20 (48–85 %) | 0 |" in text
    title = Image.open(tmp_path / "summary.png").text["Title"]
    assert "success rate per setting" in title and "seeds pooled" in title and "10 episodes" not in title
    assert not (tmp_path / "delay.png").exists()  # no setting injects delay


@pytest.mark.slow
def test_sweep_on_a_local_ray_instance_honours_workers_and_shows_progress(sweep_file, tmp_path):
    """`workers: 1` runs one cell at a time on Ray too; a terminal shows the progress bar."""
    import fcntl
    import pty
    import struct
    import termios

    out = tmp_path / "ray"
    env = {k: v for k, v in os.environ.items() if k != "MANIP_NO_PROGRESS"}
    command = [
        sys.executable,
        "-P",
        "-m",
        "manip.cli.main",
        "sweep",
        str(sweep_file),
        "seeds=[0]",
        "workers=1",
    ]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    process = subprocess.Popen(
        [*command, "--out", str(out), "--ray", "local"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=follower, text=True,
    )  # fmt: skip
    os.close(follower)
    terminal = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the sweep closed its end
            break
        if not chunk:
            break
        terminal += chunk
    stdout = process.communicate(timeout=300)[0]
    os.close(leader)
    assert process.returncode == 0, terminal.decode(errors="replace")
    assert "2 cell(s), ran 2" in stdout
    assert {r["setting"]: r["successes"] for r in _rows(out)} == {"default": "1", "short": "0"}
    assert (
        b"sweep" in terminal and b"2/2" in terminal and b"cell" in terminal
    )  # tqdm: "sweep: ... 2/2 ... cell/s"
    spans = sorted(
        (record["started"], record["finished"])
        for record in (read_json(d / "cell.json") for d in (out / "cells").iterdir())
    )
    assert spans[0][1] <= spans[1][0]  # the second cell started after the first finished


def test_unreachable_ray_address_fails_with_one_line(sweep_file, tmp_path):
    result = manip(
        "sweep", str(sweep_file), "--out", str(tmp_path / "o"), "--ray", "127.0.0.1:1", timeout=120
    )
    assert result.returncode != 0
    assert "--ray 127.0.0.1:1: no Ray cluster answers there" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


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
        ("tasks: [Lift]\npolicies: [expert, expert]\n", "the same policy twice"),
        ("tasks: [Lift]\nepisodes: 0\n", "episodes"),
        ("tasks: [Lift]\nsettings: [{name: a, executor: fast}]\n", "executor"),
        ("tasks: [Lift]\nsettings: [{name: a, ensemble_every: 2}]\n", "only with executor: ensemble"),
        ("tasks: [Lift]\nsettings: [{name: a, delay_ms: -5}]\n", "delay_ms"),
        ("tasks: [Lift]\ngrid: {latency: [1, 2]}\n", "grid: 'latency' is not a setting key"),
        ("tasks: [Lift]\ngrid: {delay_ms: [0, -1]}\n", "grid setting 'delay_ms=-1'"),
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
    settings = config.all_settings()
    assert config.tasks and len({s.name for s in settings}) == len(settings)


def test_a_cells_name_changes_with_every_setting():
    """A cell's identity (written to cell.json) holds every setting; its directory name hashes it."""
    from manip.sim.sweep import SweepConfig, cells_of

    config = SweepConfig(tasks=["Lift"], episodes=3, settings=[{"name": "d", "delay_ms": 100}])
    (cell,) = cells_of(config)
    identity = cell.identity()
    assert identity["setting"]["delay_ms"] == 100 and identity["episodes"] == 3
    other = cells_of(SweepConfig(tasks=["Lift"], episodes=3, settings=[{"name": "d", "delay_ms": 200}]))[0]
    assert cell.name != other.name and json.dumps(identity)
