"""The import graph: every module installs under ``manip.``, no import runs up a layer or closes a cycle
between packages, and the light client imports without torch, pydantic or YAML.

The graph is read from the source (every ``import``/``from`` statement, also those inside functions, and
``"manip.x.y"`` module strings handed to a lazy registry), so a lazy import up a layer is caught too.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROS_MODULE = ROOT / "ros_ws" / "src" / "real" / "real"

# folder → import name, as setup.py installs them (kernel and CLI first: they live under data/)
FOLDERS = {
    "data/core": "manip.core",
    "data/cli": "manip.cli",
    "data": "manip.data",
    "policies": "manip.policies",
    "sim": "manip.sim",
    "real": "manip.real",
    "bench": "manip.bench",
}

# package → the packages it may import (besides itself). The order of the layers:
# core ← {data, real.client ← real.cameras} ← policies ← {sim, real} ← bench; the CLI dispatches verbs by entry
# point and imports only the kernel; the ROS nodes use the light client (the recorder node also data).
ALLOWED = {
    "manip.core": set(),
    "manip.cli": {"manip.core"},
    "manip.data": {"manip.core", "manip.cli"},
    "manip.real.client": {"manip.core"},
    "manip.real.cameras": {"manip.core", "manip.real.client"},  # point clouds: manip.real.client.points
    "manip.policies": {"manip.core", "manip.cli", "manip.data", "manip.real.client"},
    "manip.sim": {"manip.core", "manip.cli", "manip.data", "manip.real.client", "manip.policies"},
    "manip.real": {
        "manip.core", "manip.cli", "manip.data", "manip.real.client", "manip.real.cameras", "manip.policies"
    },
    "manip.bench": {
        "manip.core", "manip.cli", "manip.data", "manip.real.client", "manip.real.cameras", "manip.policies",
        "manip.sim", "manip.real",
    },
    "ros": {"manip.core", "manip.real.client", "manip.real.cameras", "manip.data"},
}  # fmt: skip
ALLOWED["ros:sim_robot_node.py"] = ALLOWED["ros"] | {"manip.sim"}  # the simulated robot runs the simulator
PACKAGES = sorted((p for p in ALLOWED if not p.startswith("ros")), key=len, reverse=True)
OLD_TOP_LEVEL = {"data", "policies", "sim", "real", "bench", "real_ros"}
LIGHT_FORBIDDEN = ("torch", "pydantic", "yaml", "zarr", "robosuite", "mujoco", "pyrealsense2", "rclpy")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    for folder, name in FOLDERS.items():
        if rel.is_relative_to(folder):
            parts = rel.relative_to(folder).parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            return ".".join((name, *parts))
    raise AssertionError(f"{path} is in no installed folder")


def package_of(module: str) -> str | None:
    return next((p for p in PACKAGES if module == p or module.startswith(p + ".")), None)


def source_files() -> list[Path]:
    files = []
    for folder in ("data", "policies", "sim", "real", "bench"):
        files += [p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(files)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``, at any depth, plus ``"manip.…"`` module strings."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("manip.")
        ):
            target = node.value.split(":")[0]
            if target.replace(".", "").replace("_", "").isalnum():
                found.append((node.lineno, target))
    return found


def violations(files: list[Path], package_for) -> list[str]:
    problems = []
    for path in files:
        importer = package_for(path)
        for line, target in imports_of(path):
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"
            if target.split(".")[0] in OLD_TOP_LEVEL and not importer.startswith("ros"):
                problems.append(f"{where}: imports '{target}' (everything lives under manip.)")
                continue
            if target.startswith(("manip.data.core", "manip.data.cli")):
                problems.append(f"{where}: '{target}' is installed as manip.core / manip.cli")
                continue
            imported = package_of(target)
            if imported is None or imported == importer:
                continue
            if imported not in ALLOWED[importer]:
                problems.append(f"{where}: {importer} may not import {target} ({imported})")
    return problems


def test_no_import_runs_up_a_layer_or_uses_an_old_name():
    problems = violations(source_files(), lambda path: package_of(module_name(path)))
    assert problems == [], "\n".join(problems)


def test_the_ros_nodes_use_the_light_client_only():
    files = sorted(ROS_MODULE.glob("*.py"))
    assert files, ROS_MODULE
    problems = violations(files, lambda path: f"ros:{path.name}" if f"ros:{path.name}" in ALLOWED else "ros")
    data_users = {
        path.name
        for path in files
        for _line, target in imports_of(path)
        if package_of(target) == "manip.data"
    }
    assert problems == [], "\n".join(problems)
    assert data_users <= {"recorder_node.py"}, f"only the recorder node uses the data layer: {data_users}"


def test_allowed_dependencies_have_no_cycle():
    graph = {p: ALLOWED[p] for p in PACKAGES}
    state: dict[str, str] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert state.get(node) != "open", f"cycle: {' -> '.join((*trail, node))}"
        if state.get(node) == "done":
            return
        state[node] = "open"
        for dep in graph[node]:
            visit(dep, (*trail, node))
        state[node] = "done"

    for package in graph:
        visit(package, ())


def test_the_checker_catches_an_import_up_a_layer(tmp_path):
    bad = ROOT / "data" / "core" / "errors.py"  # a kernel module ...
    fake = tmp_path / "errors.py"
    fake.write_text(
        "def f():\n    from manip.policies.checkpoint import load_policy\n"
    )  # ... reaching up, lazily
    problems = violations([fake], lambda _path: package_of(module_name(bad)))
    assert len(problems) == 1 and "manip.core may not import manip.policies.checkpoint" in problems[0]


BLOCKER = textwrap.dedent(
    """
    import importlib.abc, importlib.util, pkgutil, sys
    FORBIDDEN = set(sys.argv[1].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                raise ImportError(f"blocked: {name}")
    sys.meta_path.insert(0, Block())
    import manip.real.client as package
    names = [m.name for m in pkgutil.walk_packages(package.__path__, "manip.real.client.")]
    for name in names:
        __import__(name)
    print(len(names), sorted(n for n in sys.modules if n.split(".")[0] in ("manip",))[:0])
    """
)


def test_every_light_client_module_imports_without_heavy_packages(tmp_path):
    result = subprocess.run(
        [sys.executable, "-P", "-c", BLOCKER, ",".join(LIGHT_FORBIDDEN)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    count = int(result.stdout.split()[0])
    modules = {p.stem for p in (ROOT / "real" / "client").glob("*.py")} - {"__init__"}
    assert count == len(modules) >= 9


def test_installed_names_are_under_manip_only(tmp_path):
    code = (
        "import importlib.util, manip.data, manip.core.errors, manip.real.client.executor\n"
        "print([n for n in ('data', 'policies', 'sim', 'real', 'bench') if importlib.util.find_spec(n)])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("folder", ["data", "policies", "sim", "real", "bench"])
def test_every_source_file_is_in_an_installed_package(folder):
    for path in (ROOT / folder).rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        assert (path.parent / "__init__.py").is_file(), f"{path.relative_to(ROOT)} is outside a package"
