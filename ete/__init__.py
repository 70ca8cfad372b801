"""Electrode Temporal Encoder: a per-electrode causal transformer pre-trained on next-token MSE."""

from ete.model import ETE, ETEConfig, features

__all__ = ["ETE", "ETEConfig", "features"]
