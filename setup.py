"""Install the repository's folders under the one import name ``manip`` (``manip`` is a namespace package).

| folder      | import name       | what it is                                                     |
|-------------|-------------------|----------------------------------------------------------------|
| data/core/  | ``manip.core``    | the kernel: errors, typed config, specs, progress, registry    |
| data/cli/   | ``manip.cli``     | the ``manip`` command: verb plugins dispatched by name         |
| data/       | ``manip.data``    | episode store, recorder, sampler, normalizer, converters       |
| policies/   | ``manip.policies``| encoders, backbones, heads, policies, trainer, checkpoints     |
| sim/        | ``manip.sim``     | tasks, env, experts, devices, eval, sweeps                     |
| real/       | ``manip.real``    | server, cameras; ``manip.real.client`` is the light client     |
| bench/      | ``manip.bench``   | benchmarks                                                     |

The kernel and the CLI sit below every layer; their folders live under data/ only because the repository's
top-level folders are fixed.
"""

from setuptools import find_namespace_packages, setup

KERNEL = {"manip.core": "data/core", "manip.cli": "data/cli"}
LAYERS = {"manip.data": "data", "manip.policies": "policies", "manip.sim": "sim", "manip.real": "real"}
LAYERS["manip.bench"] = "bench"


def packages_under(name: str, folder: str, skip: tuple[str, ...] = ()) -> list[str]:
    """``name`` and every package below ``folder`` (folders holding ``__init__.py``), minus ``skip``."""
    found = find_namespace_packages(folder, exclude=[f"{s}*" for s in skip] + ["*__pycache__*"])
    subs = [p for p in found if _is_package(folder, p)]
    return [name, *(f"{name}.{p}" for p in subs)]


def _is_package(folder: str, dotted: str) -> bool:
    from pathlib import Path

    return (Path(folder, *dotted.split(".")) / "__init__.py").is_file()


packages, package_dir = [], {}
for name, folder in {**KERNEL, **LAYERS}.items():
    skip = tuple(sub.split("/", 1)[1] for sub in KERNEL.values() if sub.startswith(folder + "/"))
    packages += packages_under(name, folder, skip)
    package_dir[name] = folder

setup(packages=packages, package_dir=package_dir)
