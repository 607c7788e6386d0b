"""The language encoder: the real packaged MiniLM loaded offline, frozen, referenced by path with a fingerprint."""

from __future__ import annotations

import shutil

import pytest
import torch

from manip.core.errors import ManipError
from manip.core.specs import FeatureSpec
from manip.policies.encoders.base import ENCODERS
from manip.policies.encoders.language import SentenceEmbedder, default_text_model_path

TEXT = [FeatureSpec("instruction", (), "str", "text")]


def language_encoder(**params):
    entry = ENCODERS.get("language")
    return entry.cls(TEXT, 2, ENCODERS.parse_params("language", params, "policy.encoders.language"))


@pytest.fixture(scope="module")
def minilm():
    return language_encoder(out_dim=16)


def test_real_minilm_embeds_instructions_by_meaning(minilm):
    embed = minilm.embedder
    assert embed.dim == 384
    e = embed(["lift the cube", "pick up the cube", "open the door"])
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    similar, different = float(e[0] @ e[1]), float(e[0] @ e[2])
    assert similar > different + 0.2


def test_language_encoder_output_and_gradients_stop_at_the_frozen_model(minilm):
    out = minilm({"instruction": ["lift the cube", "stack the red block on the green one"]})
    assert out.shape == (2, minilm.cond_dim) == (2, 16)
    out.sum().backward()
    assert minilm.project.weight.grad is not None
    assert not any(p.requires_grad for p in minilm.embedder.text_model.model.parameters())
    assert set(minilm.state_dict()) == {"embedder.fingerprint", "project.weight", "project.bias"}


def test_language_encoder_rejects_bad_instructions(minilm):
    with pytest.raises(ManipError, match="list of strings"):
        minilm({"instruction": "lift the cube"})
    with pytest.raises(ManipError, match="lacks the instruction"):
        minilm({})
    with pytest.raises(ManipError, match="not a local model directory"):
        language_encoder(path="/nonexistent/model")


@pytest.fixture(scope="module")
def tiny_text_model(tmp_path_factory):
    """A tiny random BERT with MiniLM's tokenizer, saved to a local directory."""
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(path)
    source = default_text_model_path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / name, path / name)
    return path


def test_fingerprint_catches_a_different_text_model_at_load(minilm, tiny_text_model):
    other = SentenceEmbedder(str(tiny_text_model), max_length=16)
    assert other.dim == 32
    assert other(["lift the cube"]).shape == (1, 32)
    state = {"fingerprint": minilm.embedder.fingerprint.clone()}  # a checkpoint trained with MiniLM
    other.load_state_dict(state)
    with pytest.raises(ManipError, match="fingerprint mismatch"):
        other(["lift the cube"])
    same = SentenceEmbedder(str(tiny_text_model), max_length=16)
    same.load_state_dict({"fingerprint": other._probe()})
    assert same(["lift the cube"]).shape == (1, 32)
