"""Generative heads: how a backbone is trained on action chunks and sampled from (diffusion, flow, MeanFlow)."""
