"""Denoising backbones shared by every generative head: (noisy chunk, time, conditioning) → chunk."""
