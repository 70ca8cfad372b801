"""NeuroLM's VQ neural tokenizer: 1-s tokens of one electrode -> discrete codes -> the token rebuilt.

Jiang et al. (2024) train the tokenizer that NeuroLM's language model reads. Each 1-s patch of one
electrode is encoded with its neighbours in time, its vector looked up in an l2-normalised codebook
(cosine nearest code), and two decoders rebuild the patch from its code alone: its samples in time,
and the amplitude of its Fourier transform (the authors found the phase adds little). Here:

- the encoder is the ETE itself, run bidirectionally over an electrode's tokens (its token and
  spectral embeddings, electrode embedding and blocks), each token's hidden state projected to
  the code space;
- codes are learned by a straight-through estimator: the codebook moves towards the encoder's
  vectors (codebook loss) and the encoder commits to its code (commitment loss, ``beta``); codes no
  token chose for a while are restarted on the encoder vectors of the current batch, so the whole
  codebook stays in use;
- optional alignment to a text model (``align > 0``): the codes, projected to the text model's
  embedding width, and that model's token embeddings are told apart by a domain classifier whose
  gradient reaches the tokenizer reversed, so the codes move into the text embeddings' space.

``ete`` imports nothing of ``eegpt``: the training loop, data and files are
``eegpt.neural_tokenizer``'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from ete.model import ETE, ETEConfig, dense


@dataclass(frozen=True)
class TokenizerConfig:
    """Shape of one tokenizer: its encoder (an ETE), its codebook and its decoders."""

    encoder: ETEConfig = ETEConfig(objective="mae", summary_loss=0.0)
    codes: int = 1024           # codebook size
    code_dim: int = 32          # width of a code (l2-normalised)
    beta: float = 0.25          # weight of the commitment loss
    decoder_hidden: int = 256   # hidden width of the temporal and frequency decoders
    amplitude_loss: float = 1.0  # weight of the amplitude-spectrum reconstruction
    align: float = 0.0          # weight of the text-alignment (domain) loss; 0: off
    text_dim: int = 0           # width of the text model's token embeddings (with align)

    def __post_init__(self):
        if self.codes < 2 or self.code_dim < 1 or self.decoder_hidden < 1 or self.beta < 0 or self.align < 0:
            raise ValueError(f"impossible tokenizer shape: {self}")
        if self.align and self.text_dim < 1:
            raise ValueError("text alignment needs the text model's embedding width (text_dim)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "TokenizerConfig":
        return cls(**dict(raw, encoder=ETEConfig(**raw["encoder"])))


def amplitude(tokens_XxP):
    """The amplitude of each token's Fourier transform, scaled like its samples (``/ sqrt(P)``)."""
    p = tokens_XxP.shape[-1]
    return jnp.abs(jnp.fft.rfft(tokens_XxP.astype(jnp.float32), axis=-1)) / jnp.sqrt(p)


def l2_normalise(x, axis=-1):
    """``x`` scaled to unit length along ``axis`` (the codebook's and the encoder's vectors)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), 1e-6)


@jax.custom_vjp
def reverse_gradient(x, scale):
    """The identity forward; the gradient times ``-scale`` backward (Ganin & Lempitsky, 2015)."""
    return x


def _reverse_fwd(x, scale):
    return x, scale


def _reverse_bwd(scale, g):
    return -scale * g, jnp.zeros_like(scale)


reverse_gradient.defvjp(_reverse_fwd, _reverse_bwd)


class MLP(nnx.Module):
    """Two dense layers with a GELU between them (the decoders and the domain classifier)."""

    def __init__(self, d_in: int, hidden: int, d_out: int, *, rngs: nnx.Rngs):
        self.up = nnx.Linear(d_in, hidden, rngs=rngs)
        self.down = nnx.Linear(hidden, d_out, rngs=rngs)

    def __call__(self, x):
        return dense(self.down, jax.nn.gelu(dense(self.up, x)))


class VQTokenizer(nnx.Module):
    """``tokens_BxNxP, electrode_B -> {"codes": [B, N], "time": [B, N, P], "amplitude": [B, N, P//2+1], ...}``."""

    def __init__(self, cfg: TokenizerConfig, *, rngs: nnx.Rngs):
        enc = cfg.encoder
        if enc.mode != "electrode" or enc.objective != "mae":
            raise ValueError("the tokenizer's encoder reads one electrode bidirectionally (mode electrode, objective mae)")
        self.cfg = cfg
        self.encoder = ETE(enc, rngs=rngs)
        self.to_code = nnx.Linear(enc.d_model, cfg.code_dim, rngs=rngs)
        self.codebook = nnx.Param(l2_normalise(jax.random.normal(rngs.params(), (cfg.codes, cfg.code_dim))))
        self.decode_time = MLP(cfg.code_dim, cfg.decoder_hidden, enc.token_len, rngs=rngs)
        self.decode_amplitude = MLP(cfg.code_dim, cfg.decoder_hidden, enc.token_len // 2 + 1, rngs=rngs)
        if cfg.align:
            self.to_text = nnx.Linear(cfg.code_dim, cfg.text_dim, rngs=rngs)
            self.domain = MLP(cfg.text_dim, cfg.decoder_hidden, 1, rngs=rngs)

    def vectors(self, tokens_BxNxP, electrode_B):
        """The encoder's l2-normalised vector of every token, ``[B, N, code_dim]``."""
        hidden = self.encoder(tokens_BxNxP, electrode_B)["hidden"].astype(jnp.float32)
        return l2_normalise(dense(self.to_code, hidden))

    def lookup(self, z_XxC):
        """(nearest code by cosine similarity [X], that code's vector [X, C])."""
        book = l2_normalise(self.codebook[...])
        codes = jnp.argmax(z_XxC @ book.T, axis=-1)
        return codes, book[codes]

    def encode(self, tokens_BxNxP, electrode_B):
        """The code of every token, ``[B, N]`` (int32)."""
        z = self.vectors(tokens_BxNxP, electrode_B)
        return self.lookup(z.reshape(-1, z.shape[-1]))[0].reshape(z.shape[:2]).astype(jnp.int32)

    def decode(self, code_vectors):
        """(samples in time, Fourier amplitude) rebuilt from code vectors ``[..., C]``."""
        return self.decode_time(code_vectors), self.decode_amplitude(code_vectors)

    def __call__(self, tokens_BxNxP, electrode_B):
        z = self.vectors(tokens_BxNxP, electrode_B)
        flat = z.reshape(-1, z.shape[-1])
        codes, q = self.lookup(flat)
        straight = flat + jax.lax.stop_gradient(q - flat)  # the decoders' gradient reaches the encoder
        time, amp = self.decode(straight)
        shape = tokens_BxNxP.shape[:2]
        return {"codes": codes.reshape(shape), "z": flat, "q": q,
                "time": time.reshape(*shape, -1), "amplitude": amp.reshape(*shape, -1), "straight": straight}

    def domain_logits(self, code_vectors_XxC, text_XxT, scale):
        """Domain classifier logits (EEG codes, then text embeddings): 1 = EEG. The codes reach it
        through a gradient reversal of ``scale``, so minimising its loss makes them look like text."""
        eeg = reverse_gradient(dense(self.to_text, code_vectors_XxC), scale)
        return self.domain(jnp.concatenate([eeg, text_XxT.astype(eeg.dtype)]))[:, 0]


def tokenizer_losses(model: VQTokenizer, tokens_BxNxP, electrode_B, text_XxT=None, align_scale=1.0):
    """(total loss, parts, codes [B, N], encoder vectors [B*N, C]) of one batch."""
    cfg = model.cfg
    out = model(tokens_BxNxP, electrode_B)
    x = tokens_BxNxP.astype(jnp.float32)
    parts = {"time_mse": jnp.mean((out["time"] - x) ** 2),
             "amplitude_mse": jnp.mean((out["amplitude"] - amplitude(x)) ** 2),
             "codebook": jnp.mean((jax.lax.stop_gradient(out["z"]) - out["q"]) ** 2),
             "commitment": jnp.mean((out["z"] - jax.lax.stop_gradient(out["q"])) ** 2)}
    loss = (parts["time_mse"] + cfg.amplitude_loss * parts["amplitude_mse"] + parts["codebook"]
            + cfg.beta * parts["commitment"])
    if cfg.align and text_XxT is not None:
        logits = model.domain_logits(out["straight"], text_XxT, align_scale)
        is_eeg = jnp.concatenate([jnp.ones(len(out["straight"])), jnp.zeros(len(text_XxT))])
        parts["domain"] = jnp.mean(jnp.maximum(logits, 0) - logits * is_eeg + jnp.log1p(jnp.exp(-jnp.abs(logits))))
        loss = loss + cfg.align * parts["domain"]
    return loss, parts, out["codes"], out["z"]


def restart_dead_codes(codebook_KxC, hits_K, z_XxC, rng, threshold: float):
    """Codes chosen fewer than ``threshold`` times moved onto encoder vectors drawn from ``z`` (the
    current batch), where the encoder's tokens are. Returns (codebook, how many were restarted)."""
    dead = hits_K < threshold
    picks = z_XxC[jax.random.randint(rng, (len(hits_K),), 0, len(z_XxC))]
    return jnp.where(dead[:, None], picks, codebook_KxC), jnp.sum(dead.astype(jnp.int32))


def code_usage(codes, n_codes: int):
    """(perplexity, live codes) of a set of codes: ``exp`` of the entropy of their histogram, and
    how many codes occur at least once."""
    counts = jnp.bincount(jnp.ravel(codes), length=n_codes).astype(jnp.float32)
    p = counts / jnp.maximum(counts.sum(), 1.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.exp(entropy), jnp.sum(counts > 0)
