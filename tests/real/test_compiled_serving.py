"""``manip serve --compile``: the modules serving runs (encoder, backbone) are the compiled ones, and a compiled
source answers like the eager one."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from manip.policies.serving import LocalPolicySource
from manip.real.commands.serve import build_source
from manip.real.synthetic import synthetic_obs

FLOW_STEPS = 4  # the tiny checkpoint's head default


class CountingBackend:
    """A ``torch.compile`` backend that runs dynamo's captured graphs as they are and counts their runs."""

    def __init__(self):
        self.graphs: list[torch.fx.GraphModule] = []
        self.runs = 0

    def __call__(self, graph: torch.fx.GraphModule, example_inputs):
        self.graphs.append(graph)

        def run(*args):
            self.runs += 1
            return graph.forward(*args)

        return run


def test_compile_runs_the_served_modules_through_their_compiled_graphs(tiny_checkpoint):
    torch._dynamo.reset()
    backend = CountingBackend()
    eager = LocalPolicySource.from_checkpoint(tiny_checkpoint, device="cpu")
    compiled = LocalPolicySource.from_checkpoint(tiny_checkpoint, device="cpu", compile=backend)
    assert compiled.compiled == ["encoder", "backbone"]
    obs = synthetic_obs("lowdim", 0.3)
    prefix = np.linspace(-0.5, 0.5, 14, dtype=np.float32).reshape(2, 7)
    for kwargs in ({}, {"prefix": prefix}):
        eager.start_episode(3)
        compiled.start_episode(3)
        runs = backend.runs
        got = compiled.request(obs, 0.0, **kwargs)
        # one encoder run and one backbone run per sampling step, all through captured graphs
        assert backend.runs - runs >= 1 + FLOW_STEPS
        np.testing.assert_allclose(got, eager.request(obs, 0.0, **kwargs), rtol=1e-5, atol=1e-6)
    assert len(backend.graphs) >= 2  # (a batch of another size recompiles: ~10 s more on a CPU)
    torch._dynamo.reset()


def test_the_serve_flag_compiles_the_served_modules(tiny_checkpoint):
    args = argparse.Namespace(
        synthetic=None, checkpoint=str(tiny_checkpoint), device="cpu", steps=None, bf16=False, compile=True
    )
    source = build_source(args)
    assert source.compiled == ["encoder", "backbone"]
    for name in source.compiled:  # nn.Module.compile: calling the module runs torch.compile's wrapper
        assert getattr(source.policy, name)._compiled_call_impl is not None
    assert source.policy._compiled_call_impl is None  # not the training forward, which serving never calls
    assert not LocalPolicySource.from_checkpoint(tiny_checkpoint, device="cpu").compiled


@pytest.mark.slow
def test_inductor_compiled_chunks_match_eager(tiny_checkpoint):
    torch._dynamo.reset()
    eager = LocalPolicySource.from_checkpoint(tiny_checkpoint, device="cpu")
    compiled = LocalPolicySource.from_checkpoint(tiny_checkpoint, device="cpu", compile=True)
    obs = synthetic_obs("lowdim", 0.3)
    for source in (eager, compiled):
        source.start_episode(9)
    np.testing.assert_allclose(compiled.request(obs, 0.0), eager.request(obs, 0.0), rtol=1e-4, atol=1e-5)
    torch._dynamo.reset()
