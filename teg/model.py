"""Task-shared Electrode Graph (TEG): graph attention over a sample's electrodes, pooled, with heads.

One node per electrode of the global vocabulary, with a learnable node embedding and gate (a
per-electrode scale of its features, started random so electrodes differ from the first step); a
sample activates the nodes of its own electrodes, whose features come from an encoder (the ETE's
summary features). Edges join the active electrodes of the same sample (all pairs, or each
electrode's k nearest by 3-D position), always with self-loops, and are built in numpy outside the
model, so samples with different montages share a batch. Each of the K residual pre-norm layers is a
multi-head graph attention (``jraph.GAT``, EEGPT's α = ReLU(aᵀ[Wh_m ‖ Wh_n]) normalised by a softmax
over each node's neighbours) followed by a SwiGLU. Mean or attention pooling over the active nodes
gives one vector per sample, and per-dataset MLP heads, grouped by task, give the logits.

jraph is imported here and nowhere else in ``teg``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jraph
import numpy as np
from flax import nnx

from ete.model import VOCAB_SIZE, RMSNorm, SwiGLU, dense  # one electrode vocabulary

DEFAULT_HEADS = {"ER": 4, "MI": 4, "MW": 2, "SS": 5, "CM": 2}


@dataclass(frozen=True)
class TEGConfig:
    """K residual pre-norm layers of [graph attention, SwiGLU] over electrode nodes.

    Attributes: ``d_model`` node width, ``layers`` K, ``heads`` attention heads, ``ffn_mult``
    SwiGLU width, ``in_features`` width of the encoder features (None: ``d_model``), ``pool``
    ("attention" or "mean"), ``heads_classes`` the per-dataset heads (name -> classes),
    ``gate_start`` the node gates' start ("random": N(0, 1); "ones").
    """

    d_model: int = 128
    layers: int = 3
    heads: int = 4
    ffn_mult: float = 3.5
    vocab: int = VOCAB_SIZE
    in_features: int | None = None
    pool: str = "attention"
    heads_classes: tuple[tuple[str, int], ...] = tuple(DEFAULT_HEADS.items())
    gate_start: str = "random"  # or "ones" (every electrode starts alike; kept for the ablation)
    readout_features: int = 0   # last feature columns read by each head's per-electrode linear readout (0: none)

    @property
    def ffn_hidden(self) -> int:
        return int(round(self.ffn_mult * self.d_model / 32)) * 32

    def param_count(self) -> int:
        """Parameters of :class:`TEG` for this configuration, without building it (tested equal)."""
        d, h = self.d_model, self.ffn_hidden
        proj = 0 if self.in_features in (None, d) else self.in_features * d + d
        layer = d + d * d + 2 * d + d + 3 * d * h
        pool = 2 * d if self.pool == "attention" else d
        heads = sum(d * (d // 2) + d // 2 + (d // 2) * c + c for _, c in self.heads_classes)
        readout = sum(self.vocab * self.readout_features * c for _, c in self.heads_classes)
        return 2 * self.vocab * d + proj + self.layers * layer + pool + heads + readout


def electrode_edges(electrodes_BxE: np.ndarray, mask_BxE: np.ndarray, positions: np.ndarray | None = None,
                    k: int | None = None, bucket: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Edges of a batch's electrode graphs, as (senders, receivers) into the flattened nodes.

    Node ``b * E + e`` is electrode ``e`` of sample ``b``; node ``B * E`` is a padding node that
    every unused edge points at (so shapes stay static under jit). Each active electrode receives
    from itself and from every active electrode of its sample (``k=None``) or from its ``k``
    nearest by ``positions[electrode id]`` (3-D), never from another sample. With ``bucket`` the
    real edges come first and the arrays are cut to the next power of two that holds them, so
    batches of small montages do not pay for the largest one (and jit sees few shapes).
    """
    mask = np.asarray(mask_BxE, bool)
    b, e = mask.shape
    fan = e if k is None else min(k, e)
    pad = b * e
    senders = np.full((b, e, fan), pad, np.int32)
    receivers = np.full((b, e, fan), pad, np.int32)
    for i in range(b):
        active = np.flatnonzero(mask[i])
        if k is None:
            nbrs = np.broadcast_to(active, (len(active), len(active)))
        else:
            pos = np.asarray(positions)[np.asarray(electrodes_BxE)[i, active]]
            dist = ((pos[:, None] - pos[None]) ** 2).sum(-1)
            nbrs = active[np.argsort(dist, axis=1, kind="stable")[:, :fan]]  # itself first (distance 0)
        n = nbrs.shape[1]
        senders[i, active, :n] = i * e + nbrs
        receivers[i, active, :n] = (i * e + active)[:, None]
    senders, receivers = senders.reshape(-1), receivers.reshape(-1)
    if bucket:
        real = senders != pad
        size = max(256, 1 << int(np.ceil(np.log2(max(int(real.sum()), 1)))))
        order = np.argsort(~real, kind="stable")[:size]
        senders, receivers = senders[order], receivers[order]
        if len(senders) < size:
            senders = np.pad(senders, (0, size - len(senders)), constant_values=pad)
            receivers = np.pad(receivers, (0, size - len(receivers)), constant_values=pad)
    return senders, receivers


class GraphAttention(nnx.Module):
    """Multi-head GAT layer on jraph: W h per head, α = ReLU(aᵀ[Wh_sender ‖ Wh_receiver])."""

    def __init__(self, d: int, heads: int, *, rngs: nnx.Rngs):
        self.heads, self.head_dim = heads, d // heads
        self.w = nnx.Linear(d, d, use_bias=False, rngs=rngs)
        self.a = nnx.Param(jax.random.normal(rngs.params(), (heads, 2 * self.head_dim)) / np.sqrt(2 * self.head_dim))

    def __call__(self, nodes_NxD, senders, receivers):
        n, d = nodes_NxD.shape
        a = self.a[...]

        def query(x):
            return self.w(x).reshape(n, self.heads, self.head_dim)

        def logits(sent, received, _edges):
            both = jnp.concatenate([sent, received], axis=-1)  # [edges, heads, 2 * head_dim]
            return jax.nn.relu(jnp.einsum("ehk,hk->eh", both, a))[..., None]

        gat = jraph.GAT(attention_query_fn=query, attention_logit_fn=logits,
                        node_update_fn=lambda x: x.reshape(n, d))
        graph = jraph.GraphsTuple(nodes=nodes_NxD, edges=None, senders=senders, receivers=receivers,
                                  globals=None, n_node=jnp.array([n]), n_edge=jnp.array([senders.shape[0]]))
        return gat(graph).nodes


class GraphBlock(nnx.Module):
    """One pre-norm graph block: attention over each electrode's neighbours, then a SwiGLU MLP."""
    def __init__(self, cfg: TEGConfig, *, rngs: nnx.Rngs):
        self.norm1, self.norm2 = RMSNorm(cfg.d_model), RMSNorm(cfg.d_model)
        self.attn = GraphAttention(cfg.d_model, cfg.heads, rngs=rngs)
        self.mlp = SwiGLU(cfg.d_model, cfg.ffn_hidden, jnp.float32, rngs=rngs)

    def __call__(self, h, senders, receivers):
        h = h + self.attn(self.norm1(h), senders, receivers)
        return h + self.mlp(self.norm2(h))


class Head(nnx.Module):
    """A task's classifier: a GELU hidden layer, then the class logits."""
    def __init__(self, d: int, classes: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(d, d // 2, rngs=rngs)
        self.out = nnx.Linear(d // 2, classes, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.gelu(self.hidden(x)))


class TEG(nnx.Module):
    """The graph. Call with encoder features and the batch's electrodes and edges::

        pooled_BxD, logits = teg(features_BxExF, electrodes_BxE, mask_BxE, senders, receivers)

    ``logits`` maps each head's name to ``[B, classes]`` (every head scores every sample; the
    loss picks each sample's own dataset head).
    """

    def __init__(self, cfg: TEGConfig, *, rngs: nnx.Rngs):
        if cfg.pool not in ("attention", "mean"):
            raise ValueError(f"unknown pooling {cfg.pool!r}")
        if cfg.gate_start not in ("random", "ones"):
            raise ValueError(f"unknown gate start {cfg.gate_start!r}")
        self.cfg = cfg
        d = cfg.d_model
        self.node = nnx.Embed(cfg.vocab, d, rngs=rngs)
        self.gate = nnx.Embed(cfg.vocab, d, rngs=rngs, embedding_init=(
            nnx.initializers.normal(1.0) if cfg.gate_start == "random" else nnx.initializers.ones))
        self.proj = (nnx.Linear(cfg.in_features, d, rngs=rngs)
                     if cfg.in_features not in (None, d) else None)
        self.blocks = nnx.List([GraphBlock(cfg, rngs=rngs) for _ in range(cfg.layers)])
        self.query = nnx.Param(jnp.zeros((d,))) if cfg.pool == "attention" else None
        self.norm = RMSNorm(d)
        self.heads = nnx.Dict({name: Head(d, c, rngs=rngs) for name, c in cfg.heads_classes})
        # Each head's own linear weights over (electrode, feature): a readout that keeps electrode
        # identity, as a linear model over the concatenated electrodes does, beside the pooled
        # graph vector (which must mix electrodes to keep them apart). Starts at zero: the head
        # begins as the graph's.
        r = cfg.readout_features
        self.readout = nnx.Dict({name: nnx.Param(jnp.zeros((cfg.vocab, r, c))) for name, c in cfg.heads_classes}) \
            if r else None

    def __call__(self, features_BxExF, electrodes_BxE, mask_BxE, senders, receivers):
        b, e, _ = features_BxExF.shape
        x = features_BxExF if self.proj is None else dense(self.proj, features_BxExF)
        # Each electrode's node both scales (gate) and shifts (node embedding) its features. With
        # the shift alone, weights shared by all nodes treat C3 and C4 alike and pooling sums them
        # away: on frozen synthetic features, motor imagery stayed at chance where a linear probe
        # on the concatenated electrodes reaches 0.65; the gate gives each electrode its own
        # linear readout through the pooling. The gate starts random, not at 1: from 1 every
        # electrode starts alike and AdamW moves a gate by about one learning rate a step, too
        # slowly to tell them apart in a short fine-tuning (the graph-start ablation in the README).
        h = x * self.gate(electrodes_BxE) + self.node(electrodes_BxE)
        h = jnp.where(mask_BxE[..., None], h, 0.0).reshape(b * e, -1)
        h = jnp.concatenate([h, jnp.zeros((1, h.shape[1]), h.dtype)])  # the padding node
        for block in self.blocks:
            h = block(h, senders, receivers)
        h = h[: b * e].reshape(b, e, -1)
        if self.cfg.pool == "attention":
            score = jnp.where(mask_BxE, jnp.einsum("bed,d->be", h, self.query[...]), -jnp.inf)
            weights = jax.nn.softmax(score, axis=-1)
        else:
            weights = mask_BxE / jnp.maximum(mask_BxE.sum(-1, keepdims=True), 1)
        pooled = self.norm(jnp.einsum("be,bed->bd", weights, h))
        logits = {name: head(pooled) for name, head in self.heads.items()}
        if self.readout is not None:
            x = jnp.where(mask_BxE[..., None], features_BxExF[..., -self.cfg.readout_features:], 0.0)
            logits = {name: lg + jnp.einsum("bef,befc->bc", x, self.readout[name][...][electrodes_BxE])
                      for name, lg in logits.items()}
        return pooled, logits
