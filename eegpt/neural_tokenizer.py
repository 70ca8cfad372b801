"""Training NeuroLM's VQ neural tokenizer (``eegpt tokenizer``), and reading its codes.

The model is ``ete.tokenizer``'s. This module gives it what ``eegpt pretrain`` gives the ETE: the
same electrode sequences from prepared stores, one jitted and donated step on the mesh, the shared
training loop (progress, TensorBoard, the stop on a non-finite loss), Orbax checkpoints with the
data iterator (rerunning the command resumes), and a held-out report: reconstruction error in time
and in amplitude spectrum beside predicting zero, codebook perplexity and live codes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from eegpt import sharding, trainer
from eegpt.checkpoint import Checkpoints
from eegpt.errors import EEGInputError, TrainingError, atomic_write, check_positive
from eegpt.pipeline import Tokens, training_batches
from eegpt.presets import preset
from eegpt.store import open_stores
from eegpt.tracking import make_tracker
from ete.tokenizer import (TokenizerConfig, VQTokenizer, amplitude, code_usage, restart_dead_codes,
                          tokenizer_losses)

@dataclass(frozen=True)
class TokenizerTrainConfig(trainer.RunConfig):
    """Everything a tokenizer run depends on (saved beside its checkpoints); ``preset`` sizes its encoder."""

    codes: int = 1024              # codebook size
    code_dim: int = 32             # width of a code
    beta: float = 0.25             # weight of the commitment loss
    decoder_hidden: int = 256      # hidden width of the temporal and frequency decoders
    amplitude_loss: float = 1.0    # weight of the amplitude-spectrum reconstruction
    align: float = 0.0             # weight of the text-alignment domain loss (needs --align-with); 0: off
    restart_every: int = 50        # steps between dead-code restarts
    restart_below: float = 0.01    # a code is dead below this many hits per step since the last restart check
    weight_decay: float = 0.0      # AdamW weight decay
    eval_batches: int = 20         # batches scored at the end

    mode = "electrode"  # the tokenizer reads one electrode at a time (what eegpt.pipeline.training_batches asks)

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "restart_every", "codes", "code_dim", "decoder_hidden")
        if self.beta < 0 or self.align < 0:
            raise EEGInputError(f"--beta {self.beta}, --align {self.align}: weights must be >= 0")
        if self.codes < 2:
            raise EEGInputError(f"--codes {self.codes}: a codebook needs at least 2 codes")

    def tokenizer_config(self, text_dim: int = 0) -> TokenizerConfig:
        ete_cfg, _ = preset(self.preset)
        return TokenizerConfig(ete_cfg.replace(objective="mae", summary_loss=0.0), self.codes, self.code_dim,
                               self.beta, self.decoder_hidden, self.amplitude_loss, self.align, text_dim)

    def tokens(self) -> Tokens:
        return Tokens(preset(self.preset)[0].token_len, self.token_stride)


# ----------------------------------------------------------------------------- the step

def text_embeddings(copilot_dir) -> np.ndarray:
    """The token embeddings ``[V, D]`` of a copilot decoder (what ``--align-with`` aligns the codes to)."""
    from eegpt.copilot.decoder import load

    decoder, _ = load(copilot_dir)
    return np.asarray(decoder.embed.embedding[...], np.float32)


def init_state(cfg: TokenizerTrainConfig, text_dim: int = 0):
    """(graphdef, state, optimizer, schedule); state = {"params", "opt", "step", "usage"}."""
    model = VQTokenizer(cfg.tokenizer_config(text_dim), rngs=nnx.Rngs(cfg.seed))
    graphdef, params = nnx.split(model)
    params = nnx.to_pure_dict(params)
    schedule = trainer.schedule(cfg.lr, cfg.warmup, cfg.steps, end=0.1)
    tx = optax.chain(optax.clip_by_global_norm(cfg.clip),
                     optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=cfg.weight_decay))
    state = {"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32),
             "usage": jnp.zeros((cfg.codes,), jnp.float32)}  # hits of each code since the last restart check
    return graphdef, state, tx, schedule


def make_train_step(cfg: TokenizerTrainConfig, graphdef, tx, schedule, text=None, state_sh=None, batch_sh=None):
    """The jitted, donated step: losses, AdamW, code usage, and every ``restart_every`` steps the
    restart of dead codes on this batch's encoder vectors."""
    key = jax.random.key(cfg.seed + 11)
    text = None if text is None else jnp.asarray(text)

    def loss_fn(params, batch, rng):
        model = nnx.merge(graphdef, params)
        tokens = batch["tokens_BxNxP"]
        # a random sample of the text vocabulary per step, as many rows as there are EEG tokens
        sample = None if text is None else text[jax.random.randint(rng, (tokens.shape[0] * tokens.shape[1],), 0,
                                                                    len(text))]
        loss, parts, codes, z = tokenizer_losses(model, tokens, batch["electrode_B"], sample)
        return loss, (parts, codes, z)

    def step(state, batch):
        rng = jax.random.fold_in(key, state["step"])
        (loss, (parts, codes, z)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], batch, rng)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        usage = state["usage"] + jnp.bincount(codes.ravel(), length=cfg.codes).astype(jnp.float32)
        book, restarted = restart_dead_codes(params["codebook"], usage, jax.lax.stop_gradient(z),
                                             jax.random.fold_in(rng, 1), cfg.restart_below * cfg.restart_every)
        due = (state["step"] + 1) % cfg.restart_every == 0
        params = dict(params, codebook=jnp.where(due, book, params["codebook"]))
        usage = jnp.where(due, 0.0, usage)  # each check counts the hits since the one before
        perplexity, live = code_usage(codes, cfg.codes)
        metrics = {"loss": loss, **parts, "grad_norm": optax.tree.norm(grads), "lr": schedule(state["step"]),
                   "batch_perplexity": perplexity, "batch_live_codes": live,
                   "restarted": jnp.where(due, restarted, 0)}
        return {"params": params, "opt": opt, "step": state["step"] + 1, "usage": usage}, metrics

    return trainer.compile_step(step, state_sh, batch_sh)


# ----------------------------------------------------------------------------- evaluation

def evaluate(cfg: TokenizerTrainConfig, graphdef, params, stores) -> dict:
    """Held-out reconstruction beside what a code carrying nothing would give: the time MSE beside
    predicting zero, the amplitude MSE beside predicting the training tokens' mean amplitude
    spectrum; codebook perplexity and live codes over the held-out tokens."""
    run = jax.jit(lambda p, b: nnx.merge(graphdef, p)(b["tokens_BxNxP"], b["electrode_B"]))
    params = sharding.local_copy(params)
    amp_sum, n_train = 0.0, 0
    for _, b in zip(range(cfg.eval_batches), iter(training_batches(cfg, stores, "train", epochs=1, seed=cfg.seed + 1))):
        amp = np.asarray(amplitude(np.asarray(b["tokens_BxNxP"], np.float32)))
        amp_sum, n_train = amp_sum + amp.sum(axis=(0, 1)), n_train + amp.shape[0] * amp.shape[1]
    mean_amp = sharding.sum_over_processes(amp_sum) / sharding.sum_over_processes(np.array([n_train]))[0]
    sums = np.zeros(5)  # time error, time energy, amplitude error, mean-spectrum error, tokens
    counts = np.zeros(cfg.codes)
    for _, b in zip(range(cfg.eval_batches), iter(training_batches(cfg, stores, cfg.eval_split, epochs=1, seed=cfg.seed + 2))):
        out = run(params, b)
        x = np.asarray(b["tokens_BxNxP"], np.float32)
        amp = np.asarray(amplitude(x))
        sums += [((np.asarray(out["time"]) - x) ** 2).mean(-1).sum(), (x ** 2).mean(-1).sum(),
                 ((np.asarray(out["amplitude"]) - amp) ** 2).mean(-1).sum(), ((mean_amp - amp) ** 2).mean(-1).sum(),
                 x.shape[0] * x.shape[1]]
        counts += np.bincount(np.asarray(out["codes"]).ravel(), minlength=cfg.codes)
    sums, counts = sharding.sum_over_processes(sums), sharding.sum_over_processes(counts)
    if sums[4] == 0:
        raise TrainingError(f"no {cfg.eval_split} windows to evaluate the tokenizer on")
    p = counts / counts.sum()
    return {"time_mse": sums[0] / sums[4], "time_zero_mse": sums[1] / sums[4],
            "amplitude_mse": sums[2] / sums[4], "amplitude_mean_mse": sums[3] / sums[4],
            "perplexity": float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())), "live_codes": int((counts > 0).sum()),
            "codes": cfg.codes, "eval_tokens": int(sums[4])}


# ----------------------------------------------------------------------------- the loop

def _checked(cfg: TokenizerTrainConfig, stores, workdir: Path) -> tuple[dict, list]:
    seen, held_out = trainer.checked_stores(cfg, stores, "train the tokenizer")
    saved = workdir / "config.json"
    if saved.exists() and (workdir / "checkpoints").is_dir():
        before = json.loads(saved.read_text())
        mine = json.loads(json.dumps(dataclasses.asdict(cfg)))
        shape = ("preset", "codes", "code_dim", "decoder_hidden", "seq_tokens", "token_stride", "align")
        differ = [k for k in shape if before.get(k) != mine[k]]
        if differ:
            raise TrainingError(f"{workdir}: holds another tokenizer ({', '.join(differ)} differ); use another --workdir")
    return seen, held_out


def train_tokenizer(cfg: TokenizerTrainConfig, data, workdir, *, align_with=None, progress: bool = True,
                    track: bool = True) -> dict:
    """Train (or resume) a tokenizer in ``workdir``; returns and writes ``workdir/metrics.json``."""
    workdir = Path(workdir)
    if cfg.align and not align_with:
        raise EEGInputError("--align needs --align-with COPILOT_DIR (the text model whose embeddings the codes meet)")
    text = text_embeddings(align_with) if align_with and cfg.align else None
    workdir.mkdir(parents=True, exist_ok=True)
    stores = open_stores(data)
    seen, held_out = _checked(cfg, stores, workdir)
    sharding.initialize_distributed()
    mesh = sharding.make_mesh(cfg.mesh[0] or None, cfg.mesh[1])
    if cfg.batch_size % mesh.devices.size:
        raise TrainingError(f"--batch-size {cfg.batch_size} does not split over {mesh.devices.size} devices")
    graphdef, state, tx, schedule = init_state(cfg, 0 if text is None else text.shape[1])
    state_sh = sharding.state_shardings(state, mesh)
    state = jax.device_put(state, state_sh)
    step_fn = make_train_step(cfg, graphdef, tx, schedule, text, state_sh, sharding.batch_sharding(mesh))
    data_it = iter(training_batches(cfg, stores, "train"))
    ckpt = Checkpoints(workdir / "checkpoints")
    resumed_from = ckpt.latest_step() or 0
    if resumed_from:
        abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, state_sh)
        state, _ = ckpt.restore(resumed_from, abstract, data_it)
    primary = sharding.is_primary()
    if primary:
        (workdir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
        (workdir / "tokenizer.json").write_text(json.dumps(cfg.tokenizer_config(
            0 if text is None else text.shape[1]).to_dict(), indent=2))
    tracker = make_tracker(workdir / "tb", enabled=track)
    last = {}

    def on_metrics(step_no, m):
        last.update(m)
        if step_no % cfg.log_every == 0:
            tracker.scalars(m, step_no)

    def save(step_no, state, _m=None):
        ckpt.save(step_no, state, data_it, {"config": dataclasses.asdict(cfg), "step": step_no})
        loop.last_good = step_no
        return state

    loop = trainer.Trainer(step_fn, steps=cfg.steps, every=cfg.ckpt_every, on_boundary=save, on_metrics=on_metrics,
                           desc="tokenizer", progress=progress and primary, nan_check=cfg.nan_check, what="tokenizer")
    loop.last_good = resumed_from or None
    try:
        state = loop.run(state, lambda _: sharding.global_batch(next(data_it), mesh), resumed_from)
    finally:
        tracker.close()
    ckpt.close()
    metrics = {"step": int(jax.device_get(state["step"])), "resumed_from": resumed_from,
               **evaluate(cfg, graphdef, state["params"], held_out), "evaluated_on": [str(s.path) for s in held_out],
               "subjects_seen": seen, "aligned_with": str(align_with) if text is not None else None,
               "train_loss": last.get("loss"), "stores": [str(s.path) for s in stores]}
    if primary:
        atomic_write(workdir / "metrics.json", lambda t: t.write_text(json.dumps(metrics, indent=2) + "\n"))
    return metrics


def load_tokenizer(workdir) -> VQTokenizer:
    """The trained tokenizer of a ``eegpt tokenizer`` run (its latest checkpoint)."""
    from eegpt.model import abstract_module

    workdir = Path(workdir)
    if not (workdir / "tokenizer.json").exists():
        raise TrainingError(f"{workdir}: no tokenizer here (tokenizer.json missing); run eegpt tokenizer")
    tcfg = TokenizerConfig.from_dict(json.loads((workdir / "tokenizer.json").read_text()))
    graphdef, abstract = abstract_module(lambda: VQTokenizer(tcfg, rngs=nnx.Rngs(0)))
    ckpt = Checkpoints(workdir / "checkpoints")
    try:
        if ckpt.latest_step() is None:
            raise TrainingError(f"{workdir}: the tokenizer has no checkpoint; run eegpt tokenizer")
        params = ckpt.restore_params(abstract)
    finally:
        ckpt.close()
    return nnx.merge(graphdef, params)
