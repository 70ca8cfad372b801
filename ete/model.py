"""The Electrode Temporal Encoder (ETE): a causal pre-norm transformer over each electrode's tokens.

Sequence of one electrode (``mode="electrode"``, EEGPT)::

    position   0            1 .. N              N + 1
    input      electrode    token_0 .. token_N-1  summary
    output     pred(token_0) pred(token_1) ..     feature (one per electrode, for the graph)

The output at position i predicts token i from the electrode and tokens 0..i-1 (causal mask), so
every token is a target and the learnable electrode embedding alone predicts the first one.

``mode="multichannel"`` is NeuroLM's multi-channel autoregression: all electrodes of a sample in
one sequence, time-major, with the "stair-stepping" mask: a position at time step t sees every
electrode at steps <= t. Step 0 holds the electrode embeddings, steps 1..N the tokens (each plus
its electrode embedding), step N+1 the summaries.

``objective="mae"`` uses the same backbone without the causal mask: a share of the tokens is
replaced by a learnable mask token and reconstructed (the AR-vs-MAE ablation).

Positions are rotary (RoPE) over time steps; blocks are RMSNorm -> attention -> RMSNorm -> SwiGLU.
Each token enters as a linear embedding of its samples plus one of its log power spectrum
(``spectral``), and the summary's output is trained to rebuild the mean log spectrum of the tokens
before it (``summary_loss``), so the feature it gives the graph describes the window.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

VOCAB_SIZE = 374  # len(eegpt.electrodes.NAMES); ete does not import eegpt


@dataclass(frozen=True)
class ETEConfig:
    """Shape and behaviour of one ETE.

    ``ffn_mult`` sets the SwiGLU hidden width (rounded to a multiple of 32); 3.5 puts EEGPT's four
    sizes within 5 % of their published parameter counts together with the graph.
    """

    d_model: int = 128
    layers: int = 3
    heads: int = 4
    ffn_mult: float = 3.5
    token_len: int = 256
    vocab: int = VOCAB_SIZE
    mode: str = "electrode"      # "electrode" (EEGPT) or "multichannel" (NeuroLM)
    objective: str = "ar"        # "ar" (next token) or "mae" (masked reconstruction)
    mask_ratio: float = 0.5      # for "mae"
    dtype: str = "float32"       # compute dtype; "bfloat16" for mixed precision (params stay f32)
    spectral: bool = True        # add an embedding of each token's log power spectrum (LaBraM-style)
    summary_loss: float = 1.0    # weight of the summary's objective: rebuild the window's mean log spectrum
    codes: int = 0               # > 0: predict the next token's code among this many (NeuroLM), not its samples
    rope_base: float = 10_000.0

    @property
    def ffn_hidden(self) -> int:
        return int(round(self.ffn_mult * self.d_model / 32)) * 32

    def replace(self, **kw) -> "ETEConfig":
        return dataclasses.replace(self, **kw)


def log_spectrum(tokens):
    """Scaled log power spectrum of each token, ``[..., P] -> [..., P // 2 + 1]`` (float32)."""
    power = jnp.square(jnp.abs(jnp.fft.rfft(tokens.astype(jnp.float32), axis=-1)))
    return 0.1 * jnp.log(power + 1e-4)


def dense(layer: nnx.Linear, x):
    """Apply a Linear as one 2-D matmul: XLA:CPU runs [B*L, D] GEMMs (and their weight gradients)
    much faster than the same contraction written over [B, L, D] (measured: 1.5x on the MLP)."""
    return layer(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


def rope_tables(positions_BxL, head_dim: int, base: float, dtype):
    """cos/sin tables [B, L, 1, head_dim/2] for rotary embeddings, computed once per forward pass."""
    half = head_dim // 2
    freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angle = positions_BxL[..., None].astype(jnp.float32) * freq
    return jnp.cos(angle)[:, :, None].astype(dtype), jnp.sin(angle)[:, :, None].astype(dtype)


def _rope(x_BxLxHxK, cos, sin):
    """Rotary position embedding on the last axis (pairs split in halves)."""
    half = x_BxLxHxK.shape[-1] // 2
    a, b = x_BxLxHxK[..., :half], x_BxLxHxK[..., half:]
    return jnp.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


class RMSNorm(nnx.Module):
    """x / rms(x) * scale, in the compute dtype with a float32 mean (simpler and faster on CPU
    than the general ``nnx.RMSNorm``)."""

    def __init__(self, d: int, *, rngs: nnx.Rngs | None = None):
        self.scale = nnx.Param(jnp.ones((d,)))

    def __call__(self, x):
        ms = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
        return (x * jax.lax.rsqrt(ms + 1e-6).astype(x.dtype)) * self.scale[...].astype(x.dtype)


class Attention(nnx.Module):
    """Causal multi-head self-attention with rotary positions (one fused QKV projection)."""
    def __init__(self, cfg: ETEConfig, *, rngs: nnx.Rngs):
        d, dt = cfg.d_model, jnp.dtype(cfg.dtype)
        self.heads = cfg.heads
        self.qkv = nnx.Linear(d, 3 * d, use_bias=False, dtype=dt, rngs=rngs)
        self.out = nnx.Linear(d, d, use_bias=False, dtype=dt, rngs=rngs)

    def __call__(self, x_BxLxD, rope, mask_BxLxL=None, causal=False, query_at_B=None):
        """``query_at_B``: only the output at that position of each row ([B, 1, D]), which attends
        to every key it would (what the summary feature needs from the last block)."""
        b, l, d = x_BxLxD.shape
        q, k, v = jnp.split(dense(self.qkv, x_BxLxD).reshape(b, l, 3 * self.heads, d // self.heads), 3, axis=2)
        q, k = _rope(q, *rope), _rope(k, *rope)
        mask = None if mask_BxLxL is None else mask_BxLxL[:, None]
        if query_at_B is not None:
            q = jnp.take_along_axis(q, query_at_B[:, None, None, None], axis=1)
            keys = jnp.arange(l)[None] <= query_at_B[:, None] if causal else jnp.ones((b, l), bool)
            if mask is not None:
                keys = keys & jnp.take_along_axis(mask_BxLxL, query_at_B[:, None, None], axis=1)[:, 0]
            mask, causal, l = keys[:, None, None], False, 1
        y = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal)
        return dense(self.out, y.reshape(b, l, d))


class SwiGLU(nnx.Module):
    """SwiGLU feed-forward; gate and up projections are one [D, 2H] matmul."""

    def __init__(self, d: int, hidden: int, dtype, *, rngs: nnx.Rngs):
        self.gate_up = nnx.Linear(d, 2 * hidden, use_bias=False, dtype=dtype, rngs=rngs)
        self.down = nnx.Linear(hidden, d, use_bias=False, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        gate, up = jnp.split(dense(self.gate_up, x), 2, axis=-1)
        return dense(self.down, jax.nn.silu(gate) * up)


class Block(nnx.Module):
    """One pre-norm transformer block of the ETE: attention, then a SwiGLU MLP."""
    def __init__(self, cfg: ETEConfig, *, rngs: nnx.Rngs):
        dt = jnp.dtype(cfg.dtype)
        self.norm1 = RMSNorm(cfg.d_model)
        self.attn = Attention(cfg, rngs=rngs)
        self.norm2 = RMSNorm(cfg.d_model)
        self.mlp = SwiGLU(cfg.d_model, cfg.ffn_hidden, dt, rngs=rngs)

    def __call__(self, x, rope, mask=None, causal=False, query_at_B=None):
        y = self.attn(self.norm1(x), rope, mask, causal, query_at_B)
        if query_at_B is not None:
            x = jnp.take_along_axis(x, query_at_B[:, None, None], axis=1)
        x = x + y
        return x + self.mlp(self.norm2(x))


class ETE(nnx.Module):
    """The encoder. Call with tokens and electrode ids; returns predictions and features.

    - electrode mode: ``tokens_BxNxP``, ``electrode_B`` -> ``pred_BxNxP``, ``feature_BxD``
    - multichannel mode: ``tokens_BxExNxP``, ``electrodes_BxE``, ``mask_BxE`` -> ``pred_BxExNxP``,
      ``feature_BxExD``

    With ``objective="mae"`` pass ``masked`` (bool, same leading shape as the tokens): those
    tokens are hidden and the predictions reconstruct them.
    """

    def __init__(self, cfg: ETEConfig, *, rngs: nnx.Rngs):
        if cfg.mode not in ("electrode", "multichannel") or cfg.objective not in ("ar", "mae"):
            raise ValueError(f"unknown mode/objective {cfg.mode}/{cfg.objective}")
        self.cfg = cfg
        d, dt = cfg.d_model, jnp.dtype(cfg.dtype)
        self.embed = nnx.Linear(cfg.token_len, d, dtype=dt, rngs=rngs)
        self.embed_spectrum = nnx.Linear(cfg.token_len // 2 + 1, d, dtype=dt, rngs=rngs) if cfg.spectral else None
        self.electrode = nnx.Embed(cfg.vocab, d, dtype=dt, rngs=rngs)
        self.summary = nnx.Param(0.02 * jax.random.normal(rngs.params(), (d,)))
        self.mask_token = nnx.Param(jnp.zeros((d,))) if cfg.objective == "mae" else None
        self.blocks = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.layers)])
        self.norm = RMSNorm(d)
        # the next token's samples (EEGPT's MSE), or logits over a tokenizer's codes (NeuroLM's cross-entropy)
        self.head = nnx.Linear(d, cfg.codes or cfg.token_len, dtype=dt, rngs=rngs)
        # The summary has no next token to predict; without an objective of its own it stays an
        # untrained query and the feature it gives the graph barely depends on the window
        # (measured: std 0.011 across windows against magnitude 0.75). It learns to rebuild the
        # mean log spectrum of the tokens it has seen, so the feature summarises the window.
        self.summary_head = nnx.Linear(d, cfg.token_len // 2 + 1, dtype=dt, rngs=rngs) if cfg.summary_loss else None

    def _embed_tokens(self, tokens, masked):
        h = dense(self.embed, tokens.astype(jnp.dtype(self.cfg.dtype)))
        if self.embed_spectrum is not None:
            # A token's raw samples enter linearly, so its band powers (what EEG tasks hinge on, and
            # what next-token MSE on 1/f signals barely needs) would reach the features only through
            # the blocks' nonlinearities. The log power spectrum of the same token puts them there
            # directly; it sees nothing beyond the token, so causality is untouched.
            h = h + dense(self.embed_spectrum, log_spectrum(tokens).astype(h.dtype))
        if masked is not None:
            h = jnp.where(masked[..., None], self.mask_token[...].astype(h.dtype), h)
        return h

    def __call__(self, tokens, electrodes, mask_BxE=None, masked=None, n_valid_B=None):
        if self.cfg.mode == "electrode":
            return self._electrode(tokens, electrodes, masked, n_valid_B)
        return self._multichannel(tokens, electrodes, mask_BxE, masked)

    def _run(self, h, positions, mask=None, causal=False, query_at_B=None):
        """The blocks; with ``query_at_B`` the last block computes only that position ([B, 1, D])."""
        rope = rope_tables(positions, self.cfg.d_model // self.cfg.heads, self.cfg.rope_base, h.dtype)
        for i, block in enumerate(self.blocks):
            h = block(h, rope, mask, causal, query_at_B if i == len(self.blocks) - 1 else None)
        return self.norm(h)

    def summary_feature(self, tokens_BxNxP, electrode_B, n_valid_B=None):
        """``self(...)["feature"]`` of electrode mode alone, without the outputs nothing reads: the
        last block computes only the summary position (a third less work for the base preset's
        three blocks of six positions; what the graph and a live stream need)."""
        if self.cfg.mode != "electrode" or not self.cfg.layers:
            return self(tokens_BxNxP, electrode_B, n_valid_B=n_valid_B)["feature"]
        return self._electrode(tokens_BxNxP, electrode_B, None, n_valid_B, feature_only=True)

    def _electrode(self, tokens_BxNxP, electrode_B, masked, n_valid_B=None, feature_only=False):
        b, n, _ = tokens_BxNxP.shape
        h_tok = self._embed_tokens(tokens_BxNxP, masked)
        first = self.electrode(electrode_B)[:, None]
        summary = jnp.broadcast_to(self.summary[...].astype(h_tok.dtype), (b, 1, h_tok.shape[-1]))
        if n_valid_B is None:
            h = jnp.concatenate([first.astype(h_tok.dtype), h_tok, summary], axis=1)  # [B, N+2, D]
            at = jnp.full((b,), n + 1)
        else:  # shorter sequences padded at the end: the summary follows the last real token
            h = jnp.concatenate([first.astype(h_tok.dtype), h_tok, jnp.zeros_like(summary)], axis=1)
            at = n_valid_B + 1
            h = jnp.where((jnp.arange(n + 2)[None] == at[:, None])[..., None], summary, h)
        positions = jnp.broadcast_to(jnp.arange(n + 2), (b, n + 2))
        keys = None
        if n_valid_B is not None and self.cfg.objective == "mae":  # causal AR never sees the padding
            keys = jnp.broadcast_to((jnp.arange(n + 2)[None] <= at[:, None])[:, None], (b, n + 2, n + 2))
        if feature_only:
            return self._run(h, positions, keys, self.cfg.objective == "ar", at)[:, 0].astype(jnp.float32)
        h = self._run(h, positions, keys, causal=self.cfg.objective == "ar")
        # AR: output i predicts token i (it has seen tokens < i); MAE: output i+1 rebuilds token i.
        pred = dense(self.head, h[:, :n] if self.cfg.objective == "ar" else h[:, 1:n + 1])
        feature = jnp.take_along_axis(h, at[:, None, None], axis=1)[:, 0]
        return {"pred": pred.astype(jnp.float32), "feature": feature.astype(jnp.float32),
                "hidden": h[:, 1:n + 1], **self._summary_pred(feature)}

    def _summary_pred(self, feature):
        if self.summary_head is None:
            return {}
        return {"summary_pred": self.summary_head(feature).astype(jnp.float32)}

    def _multichannel(self, tokens_BxExNxP, electrodes_BxE, mask_BxE, masked):
        b, e, n, _ = tokens_BxExNxP.shape
        el = self.electrode(electrodes_BxE)  # [B, E, D]
        h_tok = self._embed_tokens(tokens_BxExNxP, masked) + el[:, :, None]
        summary = self.summary[...].astype(el.dtype) + el
        steps = jnp.concatenate([el[:, :, None], h_tok.astype(el.dtype), summary[:, :, None]], axis=2)
        h = steps.transpose(0, 2, 1, 3).reshape(b, (n + 2) * e, -1)  # time-major
        step_of = jnp.repeat(jnp.arange(n + 2), e)
        positions = jnp.broadcast_to(step_of, (b, step_of.size))
        if mask_BxE is None:
            mask_BxE = jnp.ones((b, e), bool)
        keys_ok = jnp.tile(mask_BxE, (1, n + 2))  # padded electrodes are never attended to
        if self.cfg.objective == "ar":
            stair = step_of[None, :] <= step_of[:, None]  # see every electrode of steps <= own
            mask = stair[None] & keys_ok[:, None, :]
        else:
            mask = jnp.broadcast_to(keys_ok[:, None, :], (b, step_of.size, step_of.size))
        h = self._run(h, positions, mask).reshape(b, n + 2, e, -1).transpose(0, 2, 1, 3)
        pred = dense(self.head, h[:, :, :n] if self.cfg.objective == "ar" else h[:, :, 1:n + 1])
        return {"pred": pred.astype(jnp.float32), "feature": h[:, :, n + 1].astype(jnp.float32),
                "hidden": h[:, :, 1:n + 1], **self._summary_pred(h[:, :, n + 1])}


def features(model: ETE, tokens, electrodes, mask_BxE=None, n_tokens_B=None):
    """Per-electrode summary features and the whole hidden sequence, for any batch.

    Electrode mode accepts graph batches too (``tokens_BxExNxP``, ``electrodes_BxE``): every
    electrode is encoded on its own and the result reshaped back to ``[B, E, ...]``; with
    ``n_tokens_B`` each sample's summary follows its own last token (stores with different window
    lengths share a batch). Returns ``(feature [B, E, D] or [B, D], hidden [..., N, D])``.
    """
    if model.cfg.mode == "electrode" and tokens.ndim == 4:
        b, e, n, p = tokens.shape
        n_valid = None if n_tokens_B is None else jnp.repeat(n_tokens_B, e)
        out = model(tokens.reshape(b * e, n, p), electrodes.reshape(b * e), n_valid_B=n_valid)
        feat = out["feature"].reshape(b, e, -1)
        if mask_BxE is not None:
            feat = jnp.where(mask_BxE[..., None], feat, 0.0)
        return feat, out["hidden"].reshape(b, e, n, -1)
    out = model(tokens, electrodes, mask_BxE)
    return out["feature"], out["hidden"]
