"""Pretraining the ETE: next-token MSE (or masked reconstruction), sharded, logged, resumable.

The step is one pure function ``(state, batch) -> (state, metrics)`` jitted once, with the state
donated and the batch split over the mesh. Metrics of step n-1 are read after step n is launched,
so reading them never stalls the device. A non-finite loss or gradient stops training with a clear
message before anything is saved; checkpoints (state, optimizer, step and the data iterator) are
written every ``ckpt_every`` steps and at the end, and rerunning the same command resumes from the
latest one.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from eegpt import sharding, trainer
from eegpt.checkpoint import Checkpoints
from eegpt.pipeline import Tokens, training_batches
from eegpt.presets import preset
from eegpt.errors import EEGInputError, TrainingError, atomic_write
from eegpt.store import open_stores
from eegpt.tracking import make_tracker
from ete import ETE, ETEConfig
from ete.model import log_spectrum


@dataclass(frozen=True)
class PretrainConfig(trainer.RunConfig):
    """Everything a pretraining run depends on (saved beside its checkpoints)."""

    bf16: bool = False             # bfloat16 compute, float32 parameters
    mode: str = "electrode"        # "electrode" (EEGPT) or "multichannel" (NeuroLM)
    objective: str = "ar"          # "ar" (next token) or "mae" (masked reconstruction)
    model: tuple = ()              # ETEConfig overrides, NAME=VALUE ... (scaling sweeps)
    targets: str | None = field(default=None, metadata={"flag": "--tokens", "metavar": "vq:DIR"})  # vq:DIR: predict the next token's code from a tokenizer run (eegpt tokenizer) by cross-entropy, NeuroLM's objective; none: its samples by MSE

    def __post_init__(self):
        super().__post_init__()
        if self.mode not in ("electrode", "multichannel") or self.objective not in ("ar", "mae"):
            raise EEGInputError(f"--mode {self.mode} / --objective {self.objective}: choose electrode|multichannel "
                                "and ar|mae")
        if self.targets is not None and (not self.targets.startswith("vq:") or self.objective != "ar"):
            raise EEGInputError(f"--tokens {self.targets}: give vq:DIR (a tokenizer run), with --objective ar "
                                "(the next token's code)")

    def ete_config(self) -> ETEConfig:
        ete_cfg, _ = preset(self.preset)
        return ete_cfg.replace(**dict(self.model), mode=self.mode, objective=self.objective,
                               dtype="bfloat16" if self.bf16 else "float32")

    def tokens(self) -> Tokens:
        return Tokens(self.ete_config().token_len, self.token_stride)

    @property
    def token_loss(self) -> str:
        """The name of the per-token loss in the metrics: ``token_ce`` (next code) or ``token_mse``."""
        return "token_ce" if self.targets else "token_mse"

    def with_code_targets(self) -> "PretrainConfig":
        """With ``--tokens vq:DIR``: the ETE's head sized to the tokenizer's codebook (kept in
        ``model``, so the trained ETE loads without its tokenizer); the tokenizer must match the
        ETE's tokens."""
        if self.targets is None or any(k == "codes" for k, _ in self.model):
            return self
        tokenizer = code_tokenizer(self.targets)
        if tokenizer.cfg.encoder.token_len != self.ete_config().token_len:
            raise TrainingError(f"{self.targets[3:]}: the tokenizer reads {tokenizer.cfg.encoder.token_len}-sample "
                                f"tokens, the {self.preset} ETE {self.ete_config().token_len}")
        return dataclasses.replace(self, model=(*self.model, ("codes", tokenizer.cfg.codes)))


@lru_cache(maxsize=2)
def code_tokenizer(targets: str):
    """The tokenizer of ``--tokens vq:DIR`` (read once)."""
    from eegpt.neural_tokenizer import load_tokenizer

    return load_tokenizer(targets[3:])


def target_codes(cfg: PretrainConfig, tokens_XxNxP, electrode_X):
    """The tokenizer's code of every token (no gradient flows into the tokenizer)."""
    return jax.lax.stop_gradient(code_tokenizer(cfg.targets).encode(tokens_XxNxP, electrode_X))


# ----------------------------------------------------------------------------- model state

def init_state(cfg: PretrainConfig):
    """(graphdef, state, optimizer) with state = {"params", "opt", "step"} as plain pytrees."""
    model = ETE(cfg.ete_config(), rngs=nnx.Rngs(cfg.seed))
    graphdef, params = nnx.split(model)
    params = nnx.to_pure_dict(params)
    schedule = trainer.schedule(cfg.lr, cfg.warmup, cfg.steps, end=0.1)
    tx = optax.chain(optax.clip_by_global_norm(cfg.clip),
                     optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=cfg.weight_decay))
    state = {"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32)}
    return graphdef, state, tx, schedule


def token_errors(cfg: PretrainConfig, graphdef, params, batch, rng):
    """Per-position error (squared error of the samples, or with ``targets`` the cross-entropy of
    the tokenizer's code), the weight of each position (1 where it is a target), the summary
    objective's error per sequence (and its weight) or None when it is off, and with ``targets``
    (the target codes, the predicted codes) per position, else None."""
    ete_cfg = cfg.ete_config()
    if cfg.mode == "electrode":
        x = batch["tokens_BxNxP"]
        masked = (jax.random.bernoulli(rng, ete_cfg.mask_ratio, x.shape[:2])
                  if cfg.objective == "mae" else None)
        out = nnx.merge(graphdef, params)(x, batch["electrode_B"], masked=masked)
        weight = masked.astype(jnp.float32) if masked is not None else jnp.ones(x.shape[:2])
        seq_weight = jnp.ones(x.shape[:1])
    else:
        x = batch["tokens_BxExNxP"][:, :, : cfg.seq_tokens]
        masked = (jax.random.bernoulli(rng, ete_cfg.mask_ratio, x.shape[:3])
                  if cfg.objective == "mae" else None)
        out = nnx.merge(graphdef, params)(x, batch["electrodes_BxE"], batch["mask_BxE"], masked=masked)
        seq_weight = batch["mask_BxE"].astype(jnp.float32)
        weight = jnp.broadcast_to(seq_weight[:, :, None], x.shape[:3])
        if masked is not None:
            weight = weight * masked
    coded = None
    if cfg.targets is None:
        err = jnp.mean((out["pred"] - x.astype(jnp.float32)) ** 2, axis=-1)
    else:
        el = batch["electrode_B"] if cfg.mode == "electrode" else batch["electrodes_BxE"].reshape(-1)
        codes = target_codes(cfg, x.reshape(-1, *x.shape[-2:]), el).reshape(x.shape[:-1])
        err = optax.softmax_cross_entropy_with_integer_labels(out["pred"], codes)
        coded = (codes, jnp.argmax(out["pred"], -1))
    summary = None
    if "summary_pred" in out:
        target = jnp.mean(log_spectrum(x), axis=-2)  # the mean log spectrum of the sequence's tokens
        summary = (jnp.mean((out["summary_pred"] - target) ** 2, axis=-1), seq_weight)
    return err, weight, summary, coded


def make_train_step(cfg: PretrainConfig, graphdef, tx, schedule, state_shardings, batch_shardings):
    """The jitted, donated pretraining step: loss, gradients, AdamW update, and the step's metrics."""
    key = jax.random.key(cfg.seed)

    def loss_fn(params, batch, rng):
        err, weight, summary, _ = token_errors(cfg, graphdef, params, batch, rng)
        token = cfg.token_loss
        parts = {token: jnp.sum(err * weight) / jnp.maximum(jnp.sum(weight), 1.0)}
        if summary is not None:
            parts["summary_mse"] = jnp.sum(summary[0] * summary[1]) / jnp.maximum(jnp.sum(summary[1]), 1.0)
        return parts[token] + cfg.ete_config().summary_loss * parts.get("summary_mse", 0.0), parts

    def step(state, batch):
        rng = jax.random.fold_in(key, state["step"])
        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], batch, rng)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {"loss": loss, **parts, "grad_norm": optax.tree.norm(grads), "lr": schedule(state["step"])}
        return {"params": params, "opt": opt, "step": state["step"] + 1}, metrics

    return trainer.compile_step(step, state_shardings, batch_shardings)


# ----------------------------------------------------------------------------- evaluation

def _token_pairs(cfg, batch):
    """(tokens [M, N, P], weights [M, N]) of a batch in either mode, as numpy."""
    if cfg.mode == "electrode":
        x = np.asarray(batch["tokens_BxNxP"])
        return x, np.ones(x.shape[:2])
    x = np.asarray(batch["tokens_BxExNxP"])[:, :, : cfg.seq_tokens]
    m = np.asarray(batch["mask_BxE"])
    return x.reshape(-1, *x.shape[2:]), np.repeat(m.reshape(-1, 1), x.shape[2], axis=1).astype(float)


def fit_linear_ar(cfg: PretrainConfig, stores, max_batches: int = 40, ridge: float = 1e-3):
    """Per-electrode linear autoregression: next token = W @ previous token + b, fitted by ridge
    regression on training data (one W shared by all electrodes, each using only its own past)."""
    xs, ys = [], []
    it = iter(training_batches(cfg, stores, "train", epochs=1, seed=cfg.seed + 1))
    for _, b in zip(range(max_batches), it):
        x, w = _token_pairs(cfg, b)
        keep = w[:, 1:] > 0
        xs.append(x[:, :-1][keep])
        ys.append(x[:, 1:][keep])
    x, y = np.concatenate(xs), np.concatenate(ys)
    x1 = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    # the sums of every process's share: one regression over all of them
    d = x1.shape[1]
    total = sharding.sum_over_processes(np.concatenate([(x1.T @ x1).ravel(), (x1.T @ y).ravel(), [len(x1)]]))
    gram = total[: d * d].reshape(d, d) + ridge * total[-1] * np.eye(d)
    return np.linalg.solve(gram, total[d * d: -1].reshape(d, -1))


def evaluate(cfg: PretrainConfig, graphdef, params, stores, ar_weights=None) -> dict:
    """MSE of the model and of reference predictors on held-out subjects' tokens.

    Every predictor is scored on the same positions: tokens 1..N-1 of each sequence (persistence
    and the linear AR need a previous token). ``val_mse_all`` also scores token 0.
    """
    predict = jax.jit(lambda p, b: token_errors(cfg, graphdef, p, b, jax.random.key(cfg.seed + 7)))
    params = sharding.local_copy(params)  # each process scores its own share of the held-out windows
    sums = {"model": 0.0, "model_all": 0.0, "zero": 0.0, "persistence": 0.0, "linear_ar": 0.0}
    count = count_all = 0.0
    it = iter(training_batches(cfg, stores, cfg.eval_split, epochs=1, seed=cfg.seed + 2))
    for _, b in zip(range(cfg.eval_batches), it):
        err, weight = (np.asarray(a) for a in predict(params, b)[:2])
        x, w = _token_pairs(cfg, b)
        err = err.reshape(w.shape)
        weight = weight.reshape(w.shape) * w
        later = weight[:, 1:]
        sums["model"] += float((err[:, 1:] * later).sum())
        sums["model_all"] += float((err * weight).sum())
        sums["zero"] += float(((x[:, 1:] ** 2).mean(-1) * later).sum())
        sums["persistence"] += float((((x[:, 1:] - x[:, :-1]) ** 2).mean(-1) * later).sum())
        if ar_weights is not None:
            prev = np.concatenate([x[:, :-1], np.ones((*x.shape[:1], x.shape[1] - 1, 1))], axis=-1)
            sums["linear_ar"] += float((((prev @ ar_weights - x[:, 1:]) ** 2).mean(-1) * later).sum())
        count += float(later.sum())
        count_all += float(weight.sum())
    *totals, count, count_all = map(float, sharding.sum_over_processes(np.array([*sums.values(), count, count_all])))
    sums = dict(zip(sums, totals))
    if count == 0:
        raise TrainingError(f"no {cfg.eval_split} windows to evaluate on; prepare stores with held-out subjects")
    out = {"val_mse": sums["model"] / count, "val_mse_all": sums["model_all"] / count_all,
           "zero_mse": sums["zero"] / count, "persistence_mse": sums["persistence"] / count,
           "eval_positions": int(count)}
    if ar_weights is not None:
        out["linear_ar_mse"] = sums["linear_ar"] / count
    return out


def evaluate_codes(cfg: PretrainConfig, graphdef, params, stores) -> dict:
    """With ``--tokens vq:DIR``: cross-entropy (nats) and accuracy of the next token's code on
    held-out tokens, beside two references scored on the same positions (tokens 1..N-1): the code
    frequencies of the training tokens (unigram), and repeating the previous token's code."""
    predict = jax.jit(lambda p, b: token_errors(cfg, graphdef, p, b, jax.random.key(cfg.seed + 7)))
    params = sharding.local_copy(params)
    n_codes = cfg.ete_config().codes
    counts = np.ones(n_codes)  # add-one: a code never seen in training still has a probability
    for _, b in zip(range(cfg.eval_batches), iter(training_batches(cfg, stores, "train", epochs=1, seed=cfg.seed + 1))):
        codes, _ = predict(params, b)[3]
        counts += np.bincount(np.asarray(codes).ravel(), minlength=n_codes)
    counts = sharding.sum_over_processes(counts)
    log_freq = np.log(counts / counts.sum())
    sums = np.zeros(5)  # model CE, model hits, unigram CE, repeat hits, positions
    for _, b in zip(range(cfg.eval_batches), iter(training_batches(cfg, stores, cfg.eval_split, epochs=1, seed=cfg.seed + 2))):
        err, weight, _, (codes, predicted) = (jax.device_get(a) for a in predict(params, b))
        codes, predicted = np.asarray(codes), np.asarray(predicted)
        later = np.asarray(weight)[..., 1:]
        sums += [(np.asarray(err)[..., 1:] * later).sum(), ((predicted == codes)[..., 1:] * later).sum(),
                 (-log_freq[codes[..., 1:]] * later).sum(), ((codes[..., 1:] == codes[..., :-1]) * later).sum(),
                 later.sum()]
    sums = sharding.sum_over_processes(sums)
    if sums[4] == 0:
        raise TrainingError(f"no {cfg.eval_split} windows to evaluate on; prepare stores with held-out subjects")
    n = sums[4]
    return {"val_ce": sums[0] / n, "val_accuracy": sums[1] / n, "unigram_ce": sums[2] / n,
            "repeat_accuracy": sums[3] / n, "eval_positions": int(n), "codes": n_codes}


# ----------------------------------------------------------------------------- the loop

# Fields that change the model's shape or what it learns: a run is resumed only with the same ones.
SAME_ON_RESUME = ("preset", "model", "mode", "objective", "seq_tokens", "token_stride", "bf16", "targets")


def _check_resume(workdir: Path, cfg: PretrainConfig) -> None:
    """Refuse, in one line and before any work, to resume a run with another model or to
    'shorten' a run that already went further (its checkpoints would silently stay as they are)."""
    saved_path = workdir / "config.json"
    if not saved_path.exists() or not (workdir / "checkpoints").is_dir():
        return
    try:
        saved = json.loads(saved_path.read_text())
    except json.JSONDecodeError:
        raise TrainingError(f"{saved_path}: damaged; use another --workdir") from None
    mine = dataclasses.asdict(cfg)
    mine["model"] = [list(kv) for kv in mine["model"]]
    differ = [f"{k} {saved.get(k)!r} here, {mine[k]!r} asked" for k in SAME_ON_RESUME
              if json.loads(json.dumps(saved.get(k))) != json.loads(json.dumps(mine[k]))]
    if differ:
        raise TrainingError(f"{workdir}: holds another pretraining run ({'; '.join(differ)}); "
                            "use another --workdir to start a new one")
    ckpt = Checkpoints(workdir / "checkpoints")
    done = ckpt.latest_step() or 0
    ckpt.close()
    if done > cfg.steps:
        raise TrainingError(f"{workdir}: already trained to step {done}; --steps {cfg.steps} cannot shorten it "
                            f"(give --steps {done} or more to resume, or use another --workdir)")


def _checked_inputs(cfg: PretrainConfig, stores) -> tuple[dict, list]:
    """(subjects seen per card, the stores holding the held-out split), refusing before any work
    stores that cannot be pretrained on, or that hold a subject a benchmark holds out."""
    if cfg.seq_tokens < 2:
        raise TrainingError(f"--seq-tokens {cfg.seq_tokens}: sequences need at least 2 tokens "
                            "(the held-out comparison predicts each token from the one before)")
    return trainer.checked_stores(cfg, stores, "pretrain")


def _seen_with_tokenizer(cfg: PretrainConfig, seen: dict) -> dict:
    """``subjects_seen`` and ``held_out_allowed`` of the run, its tokenizer's included (with
    ``--tokens vq:DIR`` the targets come from a model that read its own subjects): what the
    benchmarks' registry check reads."""
    allowed = cfg.allow_held_out
    seen = {card: list(subjects) for card, subjects in seen.items()}
    if cfg.targets:
        tokenizer_dir = Path(cfg.targets[3:])
        tcfg = json.loads((tokenizer_dir / "config.json").read_text())
        allowed = allowed or bool(tcfg.get("allow_held_out"))
        tmetrics = tokenizer_dir / "metrics.json"
        for card, subjects in (json.loads(tmetrics.read_text()).get("subjects_seen", {}) if tmetrics.exists()
                               else {}).items():
            seen[card] = sorted(set(seen.get(card, [])) | set(subjects), key=lambda s: (len(s), s))
    return {"subjects_seen": seen, "held_out_allowed": allowed}


def pretrain(cfg: PretrainConfig, data, workdir, *, progress: bool = True, track: bool = True) -> dict:
    """Pretrain (or resume) in ``workdir``; returns and writes ``workdir/metrics.json``."""
    workdir = Path(workdir)
    cfg = cfg.with_code_targets()
    workdir.mkdir(parents=True, exist_ok=True)
    stores = open_stores(data)
    seen, held_out = _checked_inputs(cfg, stores)
    _check_resume(workdir, cfg)
    sharding.initialize_distributed()
    mesh = sharding.make_mesh(cfg.mesh[0] or None, cfg.mesh[1])
    if cfg.batch_size % (mesh.shape["data"] * mesh.shape["fsdp"]):
        raise TrainingError(f"--batch-size {cfg.batch_size} does not split over {mesh.devices.size} devices")
    graphdef, state, tx, schedule = init_state(cfg)
    state_sh = sharding.state_shardings(state, mesh)
    state = jax.device_put(state, state_sh)
    batch_sh = sharding.batch_sharding(mesh)
    step_fn = make_train_step(cfg, graphdef, tx, schedule, state_sh, batch_sh)

    data_it = iter(training_batches(cfg, stores, "train"))
    ckpt = Checkpoints(workdir / "checkpoints")
    history_path = workdir / "history.jsonl"
    history: list[dict] = []
    resumed_from = ckpt.latest_step() or 0
    if resumed_from:
        abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, state_sh)
        state, meta = ckpt.restore(resumed_from, abstract, data_it)
        if meta.get("config", {}).get("preset") != cfg.preset:
            raise TrainingError(f"{workdir}: holds a {meta['config']['preset']} run, not {cfg.preset}; "
                                "use another --workdir")
        if history_path.exists():  # steps after the checkpoint will be run again
            history = [h for h in map(json.loads, history_path.read_text().splitlines()) if h["step"] <= resumed_from]
    primary = sharding.is_primary()  # process 0 writes the run's files; every process checkpoints
    if primary:
        (workdir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    tracker = make_tracker(workdir / "tb", enabled=track)
    tokens_per_step = cfg.batch_size * cfg.seq_tokens
    clock = {"t": time.perf_counter(), "n": 0}
    t_start = time.perf_counter()

    def on_metrics(step_no, m):
        history.append({"step": step_no, **m})
        clock["n"] += 1
        if step_no % cfg.log_every == 0:
            now = time.perf_counter()
            tracker.scalars({**m, "tokens_per_s": clock["n"] * tokens_per_step / (now - clock["t"])}, step_no)
            clock.update(t=now, n=0)

    def save(step_no, state=None, _m=None):
        if primary:
            atomic_write(history_path, lambda t: t.write_text("".join(json.dumps(h) + "\n" for h in history)))
        ckpt.save(step_no, state, data_it, {"config": dataclasses.asdict(cfg), "step": step_no})
        loop.last_good = step_no
        return state

    loop = trainer.Trainer(step_fn, steps=cfg.steps, every=cfg.ckpt_every, on_boundary=save, on_metrics=on_metrics,
                           desc=f"pretrain {cfg.preset}", progress=progress and primary, nan_check=cfg.nan_check,
                           what="pretrain")
    loop.last_good = ckpt.latest_step()
    try:
        state = loop.run(state, lambda _: sharding.global_batch(next(data_it), mesh), resumed_from)
    finally:
        tracker.close()
    train_seconds = time.perf_counter() - t_start
    final_step = int(jax.device_get(state["step"]))
    if final_step > resumed_from and ckpt.latest_step() != final_step:
        save(final_step, state)
    ckpt.close()
    params = state["params"]
    if cfg.targets:
        scores = evaluate_codes(cfg, graphdef, params, held_out)
    else:
        scores = evaluate(cfg, graphdef, params, held_out, fit_linear_ar(cfg, stores) if cfg.objective == "ar" else None)
    token = cfg.token_loss
    metrics = {"step": final_step, "resumed_from": resumed_from, "preset": cfg.preset, "mode": cfg.mode,
               "objective": cfg.objective, "targets": cfg.targets or "samples (MSE)", **scores,
               "evaluated_on": [str(s.path) for s in held_out], **_seen_with_tokenizer(cfg, seen),
               "train_loss": history[-1]["loss"] if history else None,
               f"train_{token}": history[-1][token] if history else None,
               "seconds": round(train_seconds, 2), "stores": [str(s.path) for s in stores]}
    if primary:
        atomic_write(workdir / "metrics.json", lambda t: t.write_text(json.dumps(metrics, indent=2) + "\n"))
    return metrics
