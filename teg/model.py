"""Task-shared Electrode Graph: configuration and size.

The graph itself (jraph GAT layers, pooling, heads) is built with the fine-tuning issue; its
configuration is here now so that model presets can be counted as EEGPT counts them (ETE + TEG).
"""

from __future__ import annotations

from dataclasses import dataclass

VOCAB_SIZE = 374
DEFAULT_HEADS = {"ER": 4, "MI": 4, "MW": 2, "SS": 5, "CM": 2}


@dataclass(frozen=True)
class TEGConfig:
    """K residual pre-norm layers of [graph attention, SwiGLU] over electrode nodes.

    Attributes: ``d_model`` node width, ``layers`` K, ``heads`` attention heads, ``ffn_mult``
    SwiGLU width, ``heads_classes`` the default per-dataset MLP heads (name -> classes).
    """

    d_model: int = 128
    layers: int = 3
    heads: int = 4
    ffn_mult: float = 3.5
    vocab: int = VOCAB_SIZE
    heads_classes: tuple[tuple[str, int], ...] = tuple(DEFAULT_HEADS.items())

    @property
    def ffn_hidden(self) -> int:
        return int(round(self.ffn_mult * self.d_model / 32)) * 32

    def param_count(self) -> int:
        """Parameters of the graph as it will be built: node embeddings, K layers of
        (RMSNorm, W [D, D], attention vectors a [2D], RMSNorm, SwiGLU), attention pooling with a
        final norm, and per-dataset heads D -> D/2 -> classes."""
        d, h = self.d_model, self.ffn_hidden
        layer = d + d * d + 2 * d + d + 3 * d * h
        heads = sum(d * (d // 2) + d // 2 + (d // 2) * c + c for _, c in self.heads_classes)
        return self.vocab * d + self.layers * layer + 2 * d + heads
