"""The copilot's text decoder: tokenizer, a small decoder-only transformer (flax NNX) with a KV
cache, structured pruning, LoRA, training (``eegpt copilot-train``), saving and loading.

A few prefix vectors projected from the graph's pooled EEG embedding (zeros when there is none)
come before the prompt, so the decoder can see the EEG itself (as NeuroLM feeds EEG tokens to its
language model). The tokenizer is a byte-level BPE (HuggingFace ``tokenizers``) trained on the
corpus, with the prompt fields and the slots as single special tokens.

Generation (greedy or top-k) runs entirely inside one jitted ``lax.while_loop`` over a KV cache;
prompts are left-padded to a multiple of 16 tokens (positions count real tokens only) so few
shapes are compiled.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from eegpt.checkpoint import Checkpoints
from eegpt.copilot.corpus import ANSWER, EOS, PAD, Case, encode_prompt, make_corpus, vocabulary_specials
from eegpt.errors import EEGInputError, atomic_write, check_positive
from eegpt.int8 import INT8_FILE, read_int8
from ete.model import VOCAB_SIZE as VOCAB

# ----------------------------------------------------------------------------- tokenizer

def train_tokenizer(cases: list[Case], vocab_size: int = 1200):
    """A byte-level BPE tokenizer (``tokenizers``) trained on the cases' prompts and answers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=vocabulary_specials(),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator((f"{c.question} {c.answer}" for c in cases), trainer)
    return tok


def load_tokenizer(path):
    """The tokenizer saved at ``path`` (``tokenizer.json``)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


# ----------------------------------------------------------------------------- the decoder

@dataclass(frozen=True)
class DecoderConfig:
    vocab: int = 1200
    d_model: int = 128
    layers: int = 3
    heads: int = 4
    head_dim: int = 32
    ffn: int = 384
    max_len: int = 192
    prefix: int = 4              # EEG prefix vectors
    eeg_features: int = 128      # width of the graph's pooled embedding
    wavelet: int = 0             # per-channel wavelet length of the optional wavelet prefix (0: none)
    eeg_tokens: int = 0          # > 0: one prefix vector per electrode slot (this many), from its features and
                                 # its electrode's embedding — the EEG-only decoder's input (eegpt.copilot.instruct)
    probe_classes: tuple = ()    # with eeg_tokens: the class tokens' ids that a linear probe of the EEG tokens
                                 # also scores as the answer's first token (LP-FT; eegpt.copilot.instruct)
    own_reading: float = 1.0     # with a probe: the weight of the transformer's own class-token logits there
    lora_rank: int = 0
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05

    def __post_init__(self):  # config.json gives a list; the config must stay hashable
        object.__setattr__(self, "probe_classes", tuple(int(i) for i in self.probe_classes))


class Proj(nnx.Module):
    """A linear map, with a LoRA update (``nnx.LoRA``: x A B, scaled by α / r, input dropout)
    when ``rank`` > 0."""

    def __init__(self, d_in: int, d_out: int, cfg: DecoderConfig, *, rngs: nnx.Rngs):
        self.base = nnx.Linear(d_in, d_out, use_bias=False, rngs=rngs)
        self.lora = nnx.LoRA(d_in, cfg.lora_rank, d_out, rngs=rngs) if cfg.lora_rank else None
        self.drop = nnx.Dropout(cfg.lora_dropout, rngs=rngs) if cfg.lora_rank else None
        self.scale = cfg.lora_alpha / max(cfg.lora_rank, 1)

    def __call__(self, x):
        y = self.base(x)
        return y if self.lora is None else y + self.scale * self.lora(self.drop(x))


class Block(nnx.Module):
    """One pre-norm decoder block: causal self-attention (with its KV cache) and a gated MLP."""
    def __init__(self, cfg: DecoderConfig, *, rngs: nnx.Rngs):
        d, hd = cfg.d_model, cfg.heads * cfg.head_dim
        self.cfg = cfg
        self.norm1, self.norm2 = nnx.RMSNorm(d, rngs=rngs), nnx.RMSNorm(d, rngs=rngs)
        self.q, self.k, self.v = (Proj(d, hd, cfg, rngs=rngs) for _ in range(3))
        self.o = Proj(hd, d, cfg, rngs=rngs)
        self.gate, self.up = Proj(d, cfg.ffn, cfg, rngs=rngs), Proj(d, cfg.ffn, cfg, rngs=rngs)
        self.down = Proj(cfg.ffn, d, cfg, rngs=rngs)

    def __call__(self, x, key_ok_BxS, cache, index):
        """x [B, T, d] written at cache slots ``index``..; attends to valid slots up to its own."""
        b, t, _ = x.shape
        h, hd = self.cfg.heads, self.cfg.head_dim
        y = self.norm1(x)
        q = self.q(y).reshape(b, t, h, hd)
        k_all = jax.lax.dynamic_update_slice(cache["k"], self.k(y).reshape(b, t, h, hd), (0, index, 0, 0))
        v_all = jax.lax.dynamic_update_slice(cache["v"], self.v(y).reshape(b, t, h, hd), (0, index, 0, 0))
        s = k_all.shape[1]
        causal = jnp.arange(s)[None, :] <= (index + jnp.arange(t))[:, None]          # [T, S]
        mask = causal[None, None] & key_ok_BxS[:, None, None, :]                     # [B, 1, T, S]
        att = jnp.einsum("bthd,bshd->bhts", q, k_all) / np.sqrt(hd)
        att = jax.nn.softmax(jnp.where(mask, att, -1e9), axis=-1)
        x = x + self.o(jnp.einsum("bhts,bshd->bthd", att, v_all).reshape(b, t, h * hd))
        y = self.norm2(x)
        return x + self.down(jax.nn.silu(self.gate(y)) * self.up(y)), {"k": k_all, "v": v_all}


class Decoder(nnx.Module):
    """The copilot's text decoder: token and position embeddings, an EEG prefix projected from the
    graph's pooled embedding, ``cfg.layers`` blocks and a tied output layer."""
    def __init__(self, cfg: DecoderConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.embed = nnx.Embed(cfg.vocab, cfg.d_model, rngs=rngs)
        self.pos = nnx.Embed(cfg.max_len, cfg.d_model, rngs=rngs)
        self.eeg = nnx.Linear(cfg.eeg_features, (1 if cfg.eeg_tokens else cfg.prefix) * cfg.d_model, rngs=rngs)
        self.electrode = nnx.Embed(VOCAB, cfg.d_model, rngs=rngs) if cfg.eeg_tokens else None
        # each electrode also scales the projected features (FiLM), so the tokens can weigh one
        # feature differently at different electrodes, as a per-electrode linear readout does
        self.electrode_scale = nnx.Embed(VOCAB, cfg.d_model, embedding_init=nnx.initializers.zeros,
                                         rngs=rngs) if cfg.eeg_tokens else None
        self.wave = nnx.Linear(cfg.wavelet, cfg.d_model, rngs=rngs) if cfg.wavelet else None
        # a linear probe of the EEG tokens: per electrode (by id, so any montage order reads alike) and
        # feature, one weight per class token; fitted before training and then kept (instruct.fit_probe)
        k = len(cfg.probe_classes)
        self.probe = nnx.Param(jnp.zeros((VOCAB, cfg.eeg_features, k))) if k else None
        self.probe_bias = nnx.Param(jnp.zeros((k,))) if k else None
        self.blocks = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.layers)])
        self.norm = nnx.RMSNorm(cfg.d_model, rngs=rngs)

    @property
    def n_prefix(self) -> int:
        if self.cfg.eeg_tokens:
            return self.cfg.eeg_tokens + 1
        return self.cfg.prefix + (1 if self.wave is not None else 0)

    def prefix(self, eeg, wave_BxCxL=None):
        """(prefix vectors [B, P, d], which are real [B, P]). ``eeg``: the pooled embedding [B, F],
        or, with ``eeg_tokens``, (features [B, E, F], electrode ids [B, E], mask [B, E])."""
        if self.electrode is not None:
            feats, ids, mask = eeg
            tokens = self.eeg(feats) * (1.0 + self.electrode_scale(ids)) + self.electrode(ids)
            # first, their mean over the real electrodes: a per-electrode linear reading of the whole
            # window in one vector, which the decoder need not assemble by attention
            w = mask[..., None].astype(tokens.dtype)
            mean = (tokens * w).sum(1, keepdims=True) / jnp.maximum(w.sum(1, keepdims=True), 1.0)
            return (jnp.concatenate([mean, tokens], 1),
                    jnp.concatenate([jnp.ones((mask.shape[0], 1), bool), mask], 1))
        b = eeg.shape[0]
        out = self.eeg(eeg).reshape(b, self.cfg.prefix, self.cfg.d_model)
        if self.wave is not None:  # each real channel's wavelet vector, projected, averaged over channels
            real = jnp.any(wave_BxCxL != 0, -1, keepdims=True)
            mean = (self.wave(wave_BxCxL) * real).sum(1, keepdims=True) / jnp.maximum(real.sum(1, keepdims=True), 1)
            out = jnp.concatenate([out, mean], axis=1)
        return out, jnp.ones(out.shape[:2], bool)

    def with_probe(self, logits_BxTxV, eeg, tokens_BxT):
        """The logits where the answer starts (at ``<a>``): each class token's is the probe's plus
        ``own_reading`` times the transformer's; elsewhere unchanged."""
        feats, ids, mask = eeg
        cls = jnp.asarray(self.cfg.probe_classes)
        k = jnp.einsum("bef,befk->bk", feats * mask[..., None], self.probe[...][ids]) + self.probe_bias[...]
        read = logits_BxTxV.at[..., cls].set(self.cfg.own_reading * logits_BxTxV[..., cls] + k[:, None, :])
        return jnp.where((tokens_BxT == ANSWER)[..., None], read, logits_BxTxV)

    def empty_cache(self, b: int, s: int):
        shape = (b, s, self.cfg.heads, self.cfg.head_dim)
        return [{"k": jnp.zeros(shape), "v": jnp.zeros(shape)} for _ in self.blocks]

    def __call__(self, x_BxTxD, positions_BxT, key_ok_BxS, cache, index):
        x = x_BxTxD + self.pos(positions_BxT)
        new = []
        for block, c in zip(self.blocks, cache):
            x, c = block(x, key_ok_BxS, c, index)
            new.append(c)
        return self.norm(x) @ self.embed.embedding[...].T, new

    def logits(self, eeg, tokens_BxT, valid_BxT, wave=None):
        """All positions at once, no cache kept (training; and the cache-free reference in tests).
        Sequences are right-padded, so positions are plain indices."""
        pre, pre_ok = self.prefix(eeg, wave)
        x = jnp.concatenate([pre, self.embed(tokens_BxT)], axis=1)
        b, s, _ = x.shape
        ok = jnp.concatenate([pre_ok, valid_BxT], axis=1)
        out, _ = self(x, jnp.broadcast_to(jnp.arange(s), (b, s)), ok, self.empty_cache(b, s), 0)
        out = out[:, pre.shape[1]:]
        return out if self.probe is None else self.with_probe(out, eeg, tokens_BxT)


def generate(model: Decoder, eeg_F, prompt: list[int], max_new: int = 120, top_k: int = 0, seed: int = 0,
             wave=None) -> list[int]:
    """Token ids after the prompt, up to ``<eos>`` (greedy, or top-k sampling when ``top_k`` > 0).
    ``eeg_F``: one window's pooled embedding, or its EEG tokens (features, electrode ids, mask)."""
    bucket = -(-len(prompt) // 16) * 16
    p = model.n_prefix
    if p + bucket + max_new > model.cfg.max_len:
        max_new = model.cfg.max_len - p - bucket
    ids = np.full((1, bucket), PAD, np.int32)
    ids[0, bucket - len(prompt):] = prompt
    eeg = (tuple(jnp.asarray(a)[None] for a in eeg_F) if isinstance(eeg_F, tuple)
           else jnp.asarray(eeg_F, jnp.float32)[None])
    out = _generate(nnx.split(model), eeg, jnp.asarray(ids), max_new, top_k,
                    jax.random.key(seed), None if wave is None else jnp.asarray(wave, jnp.float32)[None])
    out = np.asarray(out[0]).tolist()
    return out[: out.index(EOS)] if EOS in out else out


@jax.jit(static_argnums=(3, 4))
def _generate(split, eeg, ids, max_new, top_k, key, wave):
    model = nnx.merge(*split)
    b, t = ids.shape
    p = model.n_prefix
    s = p + t + max_new
    valid = ids != PAD
    pre, pre_ok = model.prefix(eeg, wave)
    x = jnp.concatenate([pre, model.embed(ids)], axis=1)
    ok = jnp.concatenate([pre_ok, valid, jnp.ones((b, max_new), bool)], axis=1)
    pos = jnp.concatenate([jnp.broadcast_to(jnp.arange(p), (b, p)), p + jnp.cumsum(valid, 1) - 1], axis=1)
    logits, cache = model(x, jnp.maximum(pos, 0), ok, model.empty_cache(b, s), 0)
    if model.probe is not None:
        logits = logits.at[:, p:].set(model.with_probe(logits[:, p:], eeg, ids))
    n_real = p + valid.sum(1)

    def pick(lg, key):
        if top_k:
            vals, idx = jax.lax.top_k(lg, top_k)
            return jnp.take_along_axis(idx, jax.random.categorical(key, vals)[:, None], 1)[:, 0]
        return jnp.argmax(lg, -1)

    def body(carry):
        i, tok, cache, out, done, key = carry
        key, sub = jax.random.split(key)
        lg, cache = model(model.embed(tok)[:, None], (n_real + i)[:, None], ok, cache, p + t + i)
        nxt = jnp.where(done, EOS, pick(lg[:, 0], sub))
        return i + 1, nxt, cache, out.at[:, i + 1].set(nxt), done | (nxt == EOS), key

    first = pick(logits[:, -1], key)
    out = jnp.full((b, max_new), EOS, jnp.int32).at[:, 0].set(first)
    carry = (0, first, cache, out, first == EOS, key)
    carry = jax.lax.while_loop(lambda c: (c[0] < max_new - 1) & ~jnp.all(c[4]), body, carry)
    return carry[3]


# ----------------------------------------------------------------------------- pruning and LoRA

def prune(model: Decoder, ratio: float = 0.5) -> Decoder:
    """Structured pruning: drop the ``ratio`` least important attention heads and MLP channels of
    every layer, importance being the squared L2 norm of each group's weights (a head: its q, k, v
    columns and its o rows; a channel: its gate and up columns and its down row), as in the EEG
    Emotion Copilot's group importance. Returns a smaller, dense model."""
    cfg = model.cfg
    keep_h = max(1, int(round(cfg.heads * (1 - ratio))))
    keep_f = max(1, int(round(cfg.ffn * (1 - ratio))))
    new_cfg = dataclasses.replace(cfg, heads=keep_h, ffn=keep_f)
    small = Decoder(new_cfg, rngs=nnx.Rngs(0))
    small.embed, small.pos, small.eeg, small.wave, small.norm = model.embed, model.pos, model.eeg, model.wave, model.norm
    small.electrode, small.electrode_scale = model.electrode, model.electrode_scale
    small.probe, small.probe_bias = model.probe, model.probe_bias
    hd = cfg.head_dim
    for big, new in zip(model.blocks, small.blocks):
        w = {n: getattr(big, n).base.kernel[...] for n in ("q", "k", "v", "o", "gate", "up", "down")}
        head_imp = sum((w[n].reshape(-1, cfg.heads, hd) ** 2).sum((0, 2)) for n in ("q", "k", "v")) \
            + (w["o"].reshape(cfg.heads, hd, -1) ** 2).sum((1, 2))
        heads = np.sort(np.argsort(-np.asarray(head_imp))[:keep_h])
        cols = (heads[:, None] * hd + np.arange(hd)).reshape(-1)
        chan_imp = (w["gate"] ** 2).sum(0) + (w["up"] ** 2).sum(0) + (w["down"] ** 2).sum(1)
        chans = np.sort(np.argsort(-np.asarray(chan_imp))[:keep_f])
        for n in ("q", "k", "v"):
            getattr(new, n).base.kernel[...] = w[n][:, cols]
        new.o.base.kernel[...] = w["o"][cols]
        new.gate.base.kernel[...], new.up.base.kernel[...] = w["gate"][:, chans], w["up"][:, chans]
        new.down.base.kernel[...] = w["down"][chans]
        new.norm1, new.norm2 = big.norm1, big.norm2
    return small


def with_lora(model: Decoder, rank: int = 8, alpha: float = 32.0, dropout: float = 0.05, seed: int = 0) -> Decoder:
    """The same decoder with a LoRA update on every projection of its blocks (B starts at zero,
    so outputs are unchanged until LoRA trains)."""
    cfg = dataclasses.replace(model.cfg, lora_rank=rank, lora_alpha=alpha, lora_dropout=dropout)
    out = Decoder(cfg, rngs=nnx.Rngs(seed))
    nnx.update(out, nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))))
    return out


def merge_lora(model: Decoder) -> Decoder:
    """Fold each LoRA update into its base weight: W + (α / r) A B; returns a plain decoder."""
    cfg = dataclasses.replace(model.cfg, lora_rank=0)
    out = Decoder(cfg, rngs=nnx.Rngs(0))
    nnx.update(out, nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))))
    for big, new in zip(model.blocks, out.blocks):
        for n in ("q", "k", "v", "o", "gate", "up", "down"):
            src = getattr(big, n)
            getattr(new, n).base.kernel[...] = src.base.kernel[...] + src.scale * (
                src.lora.lora_a[...] @ src.lora.lora_b[...])
    return out


def parameters(model: Decoder) -> dict:
    """The decoder's parameters as a plain nested dict (what is saved)."""
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def param_count(model) -> int:
    """The number of trainable parameters of ``model``."""
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


# ----------------------------------------------------------------------------- training and answering

@dataclass(frozen=True)
class CopilotTrainConfig:
    pairs: int = 6000           # training pairs drawn from the knowledge base
    steps: int = 600
    batch_size: int = 16
    lr: float = 4e-3            # lower (2e-3, 300 steps) fell back to the template on 10 % of answers
    warmup: int = 50
    vocab: int = 1200           # BPE vocabulary size
    seed: int = 0

    def __post_init__(self):
        check_positive(self, "pairs", "steps", "batch_size", "lr", "vocab")


def encode_corpus(tok, cases: list[Case], dcfg: DecoderConfig, hide_class: bool = False, wave_text: bool = False):
    """(eeg [N, F], tokens [N, T], valid [N, T], target weights [N, T], wave [N, C, L]): prompt,
    answer, <eos>, right-padded to a length that holds 99.5 % of pairs; the loss counts answer
    tokens only. ``wave`` (zeros at missing channels) is [N, 1, 1] without the wavelet prefix."""
    def prompt(c):
        return encode_prompt(tok, c, hide_class, wave_text)

    lengths = [len(prompt(c)) + len(tok.encode(" " + c.answer).ids) + 1 for c in cases[:500]]
    max_tokens = min(dcfg.max_len - dcfg.prefix, int(np.percentile(lengths, 99.5)) + 8)
    eeg_features = dcfg.eeg_features
    b = len(cases)
    toks = np.full((b, max_tokens), PAD, np.int32)
    loss_w = np.zeros((b, max_tokens), np.float32)
    eeg = np.zeros((b, eeg_features), np.float32)
    answers = tok.encode_batch([" " + c.answer for c in cases])
    c_max = max((c.wave.shape[0] for c in cases if c.wave is not None), default=1) if dcfg.wavelet else 1
    wave = np.zeros((b, c_max, dcfg.wavelet or 1), np.float32)
    for i, (c, a) in enumerate(zip(cases, answers)):
        p = prompt(c)
        seq = (p + a.ids + [EOS])[:max_tokens]
        toks[i, : len(seq)] = seq
        loss_w[i, len(p) - 1: len(seq) - 1] = 1.0  # predict token j+1 from position j
        if c.eeg is not None:
            eeg[i] = c.eeg
        if dcfg.wavelet and c.wave is not None:
            wave[i, : len(c.wave)] = c.wave
    return eeg, toks, toks != PAD, loss_w, wave


def train(workdir, cfg: CopilotTrainConfig = CopilotTrainConfig(), dcfg: DecoderConfig | None = None,
          eeg_bank: dict | None = None, progress: bool = True) -> dict:
    """Build the corpus and tokenizer, train the decoder; writes ``workdir`` (config.json,
    tokenizer.json, checkpoints/) and returns the run summary."""

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cases = make_corpus(cfg.pairs, cfg.seed, eeg_bank)
    tok = train_tokenizer(cases, cfg.vocab)
    dcfg = dcfg or DecoderConfig()
    width = next(iter(eeg_bank.values())).shape[1] if eeg_bank else dcfg.eeg_features  # the graph's width
    dcfg = dataclasses.replace(dcfg, vocab=tok.get_vocab_size(), eeg_features=width)
    model = Decoder(dcfg, rngs=nnx.Rngs(cfg.seed))
    data = encode_corpus(tok, cases, dcfg)
    max_tokens = data[1].shape[1]
    history = fit(model, data, cfg, progress=progress)
    save(workdir, model, tok)
    summary = {"train": dataclasses.asdict(cfg), "decoder": dataclasses.asdict(dcfg), "max_tokens": max_tokens,
               "parameters": param_count(model), "seconds": round(time.perf_counter() - t0, 1), "history": history}
    atomic_write(workdir / "train.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def fit(model: Decoder, data, cfg: CopilotTrainConfig, wrt=nnx.Param, progress: bool = False,
        every: int | None = None, on_boundary=None, augment=None) -> list[dict]:
    """Train ``model`` in place on encoded pairs (:func:`encode_corpus`; the first item may be a
    tuple of arrays, the EEG tokens) with the project's one training loop
    (:class:`eegpt.trainer.Trainer`); only ``wrt`` variables change (``nnx.LoRAParam`` for LoRA).
    ``on_boundary(step)`` runs every ``every`` steps (validation); ``augment(batch, rng)`` changes
    each training batch. Returns the loss every 50 steps."""
    from eegpt import trainer

    sched = trainer.schedule(cfg.lr, cfg.warmup, cfg.steps, end=0.05)
    opt = nnx.Optimizer(model, optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(sched, weight_decay=0.01)),
                        wrt=wrt)

    @nnx.jit
    def update(model, opt, eeg, toks, valid, w, wave):
        def loss_fn(m):
            lg = m.logits(eeg, toks, valid, wave if m.wave is not None else None)
            ce = optax.softmax_cross_entropy_with_integer_labels(lg[:, :-1], toks[:, 1:])
            return (ce * w[:, :-1]).sum() / w[:, :-1].sum()

        loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, wrt))(model)
        opt.update(model, grads)
        return loss

    def step(state, batch):  # the decoder and its optimizer change in place (NNX); no state to pass
        return state, {"loss": update(model, opt, *batch)}

    rng = np.random.default_rng(cfg.seed + 1)
    history: list[dict] = []

    n = len(jax.tree.leaves(data[0])[0])

    def batch_at(_):
        pick = rng.integers(n, size=cfg.batch_size)
        batch = jax.tree.map(lambda a: a[pick], data)
        return batch if augment is None else augment(batch, rng)

    def on_metrics(it, m):
        if it % 50 == 0 or it == cfg.steps:
            history.append({"step": it, "loss": m["loss"]})

    def boundary(it, state, _):
        if on_boundary is not None:
            model.eval()
            on_boundary(it)
            model.train()
        return state

    model.train()
    loop = trainer.Trainer(step, steps=cfg.steps, every=every or cfg.steps, on_boundary=boundary,
                           on_metrics=on_metrics, desc="copilot-train", progress=progress, what="copilot-train")
    loop.run(None, batch_at)
    model.eval()
    return history


def save(workdir, model: Decoder, tok) -> None:
    """config.json + tokenizer.json + the parameters (one Orbax checkpoint)."""

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tok.save(str(workdir / "tokenizer.json"))
    ckpt = Checkpoints(workdir / "checkpoints", max_to_keep=1)
    try:
        step = (ckpt.latest_step() or 0) + 1
        ckpt.save_state(step, parameters(model), {"decoder": dataclasses.asdict(model.cfg)})
    finally:
        ckpt.close()
    atomic_write(workdir / "config.json",
                 lambda p: p.write_text(json.dumps(dataclasses.asdict(model.cfg), indent=2) + "\n"))


def load(path) -> tuple[Decoder, object]:
    """(decoder, tokenizer) of a copilot directory (config.json, tokenizer.json, checkpoints/)."""
    path = Path(path)
    if not (path / "config.json").exists() or not (path / "tokenizer.json").exists():
        raise EEGInputError(f"{path}: no copilot decoder here (config.json or tokenizer.json missing); "
                            "train one with eegpt copilot-train")
    cfg = DecoderConfig(**json.loads((path / "config.json").read_text()))
    model = Decoder(cfg, rngs=nnx.Rngs(0))
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), parameters(model))
    if (path / INT8_FILE).exists():  # eegpt quantize's int8 weights
        restored = read_int8(path / INT8_FILE, abstract)
    else:
        ckpt = Checkpoints(path / "checkpoints", max_to_keep=1)
        try:
            if ckpt.latest_step() is None:
                raise EEGInputError(f"{path}: the copilot decoder has no saved parameters; train it again")
            restored, _ = ckpt.restore_state(None, abstract)
        finally:
            ckpt.close()
    nnx.replace_by_pure_dict(params := nnx.state(model, nnx.Param), restored)
    nnx.update(model, params)
    model.eval()
    return model, load_tokenizer(path / "tokenizer.json")
