"""Joint multi-task fine-tuning: ETE features -> TEG -> one head per dataset, and using the result.

Every step draws a dataset by temperature-weighted sampling (weight ∝ training windows^(1/T)) and
a batch of its windows, encodes every electrode with the ETE (frozen, as EEGPT fine-tunes, or
trainable with its own smaller learning rate), runs the graph over each sample's electrodes and
scores the batch with that dataset's head. The loss is class-balanced per dataset; training stops
early when the mean balanced accuracy over the datasets' validation subjects has not improved for
``patience`` evaluations. Checkpoints (state, optimizer, step, grain iterator) resume a killed run;
the best parameters are kept apart in ``best/``, and ``finetune.json`` says what was trained on
what.

Why one dataset per batch: a 30-s sleep epoch is 30 tokens, a 4-s window 4, a 1-s N170 trial 1;
a mixed batch is padded to its longest window, so every batch would cost as much as a sleep batch
(measured: 7x the positions). The heads still share one graph and one encoder, step by step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from eegpt.checkpoint import Checkpoints
from eegpt.electrodes import positions
from eegpt.metrics import classification
from eegpt.pipeline import graph_batches
from eegpt.presets import preset
from eegpt.recording import atomic_write
from eegpt.store import Store, open_stores
from eegpt.tracking import make_tracker
from eegpt.train import PretrainConfig, TrainingError
from ete import ETE
from ete import features as ete_features
from teg import TEG, TEGConfig, electrode_edges
from teg.model import VOCAB_SIZE as VOCAB


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3                # graph and heads
    train_ete: bool = False         # False: the ETE stays as pretrained (EEGPT)
    # The ETE's learning rate when it trains. Small, because the graph's random gates send large
    # gradients into the encoder at first: on the quick demo (240 steps, seed 0) 3e-4 and 1e-4
    # collapsed the features (ER and MI at chance), 3e-5 did not (ER 0.57, MI 0.67 on validation).
    ete_lr: float = 3e-5
    warmup: int = 50
    weight_decay: float = 0.05
    clip: float = 1.0
    temperature: float = 2.0        # dataset sampling weight ∝ training windows^(1/T)
    class_balanced: bool = True
    eval_every: int = 100           # validation (and checkpoint) interval
    patience: int = 4               # evaluations without improvement before stopping
    k_neighbours: int | None = None  # None: fully connected electrode graphs; k: k nearest by position
    pool: str = "attention"         # or "mean"
    graph_layers: int | None = None  # None: the ETE preset's (base: 3)
    gate_start: str = "random"      # the graph's node gates: "random" or "ones" (see teg.TEG)
    seed: int = 0


# ----------------------------------------------------------------------------- the pretrained encoder

def pretrain_config(raw: dict) -> PretrainConfig:
    raw = dict(raw, mesh=tuple(raw.get("mesh", (0, 1))), model=tuple(tuple(kv) for kv in raw.get("model", ())))
    return PretrainConfig(**raw)


def abstract_module(make) -> tuple:
    """(graphdef, parameter shapes as a plain dict) of the module ``make()`` builds, from shapes
    alone (``nnx.eval_shape``: nothing is allocated before a checkpoint is read into them)."""
    graphdef, state = nnx.split(nnx.eval_shape(make))
    return graphdef, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), nnx.to_pure_dict(state))


def load_ete(ete_dir):
    """(graphdef, params, PretrainConfig) of a pretraining run's latest checkpoint."""
    ete_dir = Path(ete_dir)
    if not (ete_dir / "config.json").exists():
        raise TrainingError(f"{ete_dir}: no pretraining run here (config.json missing); run eegpt pretrain")
    cfg = pretrain_config(json.loads((ete_dir / "config.json").read_text()))
    # the parameters alone: no optimizer state is built or read
    graphdef, abstract = abstract_module(lambda: ETE(cfg.ete_config(), rngs=nnx.Rngs(0)))
    ckpt = Checkpoints(ete_dir / "checkpoints")
    if ckpt.latest_step() is None:
        raise TrainingError(f"{ete_dir}: no checkpoint to load; run eegpt pretrain")
    try:
        params = ckpt.restore_params(abstract)
    except (ValueError, KeyError) as err:
        raise TrainingError(f"{ete_dir}: checkpoint does not match its config.json ({str(err)[:120]}); "
                            "pretrain again") from None
    except FileNotFoundError:
        raise TrainingError(f"{ete_dir}: checkpoint {ckpt.latest_step()} has no saved parameters (a damaged "
                            "or partly copied run); pretrain again") from None
    finally:
        ckpt.close()
    return graphdef, jax.tree.map(jnp.asarray, params), cfg


def teg_config(ete_cfg: PretrainConfig, stores: list[Store], ft: FinetuneConfig) -> TEGConfig:
    _, base = preset(ete_cfg.preset)
    return dataclasses.replace(base, in_features=ete_cfg.ete_config().d_model, pool=ft.pool,
                               layers=base.layers if ft.graph_layers is None else ft.graph_layers,
                               gate_start=ft.gate_start,
                               heads_classes=tuple((s.name, len(s.classes)) for s in stores))


# ----------------------------------------------------------------------------- one model, two parts

def graph_inputs(batch: dict, k: int | None) -> dict:
    """A graph batch plus its edges (all pairs of a sample's electrodes, or k nearest)."""
    senders, receivers = electrode_edges(batch["electrodes_BxE"], batch["mask_BxE"], positions(), k, bucket=True)
    return dict(batch, senders=senders, receivers=receivers)


def encode(ete_graphdef, ete_params, batch):
    """Per-electrode ETE features ``[B, E, F]`` of a graph batch (zeros at padded electrodes).

    Electrode mode reads the flat layout (only real electrodes go through the ETE and are
    scattered back to ``[B, E]``); multichannel mode the padded one."""
    ete = nnx.merge(ete_graphdef, ete_params)
    electrodes, mask = batch["electrodes_BxE"], batch["mask_BxE"]
    if ete.cfg.mode != "electrode":
        return ete_features(ete, batch["tokens_BxExNxP"], electrodes, mask)[0]
    b, e = mask.shape
    out = ete(batch["tokens_KxNxP"], batch["electrode_K"], n_valid_B=batch["n_tokens_K"])
    flat = jnp.zeros((b * e + 1, out["feature"].shape[-1]), jnp.float32).at[batch["put_K"]].set(out["feature"])
    return flat[: b * e].reshape(b, e, -1)


def forward(ete_graphdef, teg_graphdef, params, batch):
    """(pooled [B, D], standardised per-electrode features [B, E, F], logits {head: [B, classes]}).

    A batch with ``features_BxExF`` (a frozen ETE's features, computed once) skips the encoder."""
    electrodes, mask = batch["electrodes_BxE"], batch["mask_BxE"]
    feats = batch["features_BxExF"] if "features_BxExF" in batch else encode(ete_graphdef, params["ete"], batch)
    norm = params["norm"]
    feats = jnp.where(mask[..., None], (feats - norm["mean"][electrodes]) / norm["std"][electrodes], 0.0)
    pooled, logits = nnx.merge(teg_graphdef, params["teg"])(
        feats, electrodes, mask, batch["senders"], batch["receivers"])
    return pooled, feats, logits


def feature_norm(chunks) -> dict:
    """Mean and std of ETE features per electrode (vocabulary id) over ``chunks`` of training
    windows, each ``(features [B, E, F], electrodes [B, E], mask [B, E])``; electrodes never seen
    get mean 0, std 1.

    Why: an ETE pretrained to predict the next token encodes *which electrode* far more strongly
    than *what this window holds* (measured on the synthetic corpus before the summary objective:
    feature std 0.011 across windows against a magnitude of 0.75), so without this the graph sees
    near-constant inputs (a 16-window batch was not memorised in 40 steps; with it, in 20). Kept
    fixed during fine-tuning and saved with the model."""
    s1 = s2 = n = None
    for f, ids, mask in chunks:
        f = np.asarray(f, np.float64)
        if s1 is None:
            s1, s2, n = np.zeros((VOCAB, f.shape[-1])), np.zeros((VOCAB, f.shape[-1])), np.zeros(VOCAB)
        np.add.at(s1, ids[mask], f[mask])
        np.add.at(s2, ids[mask], f[mask] ** 2)
        np.add.at(n, ids[mask], 1)
    seen = n[:, None] > 1
    mean = np.where(seen, s1 / np.maximum(n, 1)[:, None], 0.0)
    std = np.where(seen, np.sqrt(np.maximum(s2 / np.maximum(n, 1)[:, None] - mean ** 2, 0.0)) + 1e-3, 1.0)
    return {"mean": jnp.asarray(mean, jnp.float32), "std": jnp.asarray(std, jnp.float32)}


class Finetuned:
    """A fine-tuned ETE + TEG (or one being fine-tuned): structure, parameters and scoring."""

    def __init__(self, ete_cfg: PretrainConfig, ete_graphdef, teg_cfg: TEGConfig, params, k: int | None,
                 batch_size: int = 32):
        self.ete_cfg, self.teg_cfg, self.params, self.k = ete_cfg, teg_cfg, params, k
        self.ete_graphdef = ete_graphdef
        self.teg_graphdef, _ = nnx.split(nnx.eval_shape(lambda: TEG(teg_cfg, rngs=nnx.Rngs(0))))
        self.heads = [name for name, _ in teg_cfg.heads_classes]
        self.batch_size = batch_size
        self._forward = jax.jit(lambda p, b: forward(self.ete_graphdef, self.teg_graphdef, p, b))
        self.encode = jax.jit(lambda ete_params, b: encode(self.ete_graphdef, ete_params, b))

    def head_of(self, store: Store) -> str:
        if store.name not in self.heads:
            raise TrainingError(f"{store.path}: no head for dataset {store.name!r}; this model has "
                                f"{', '.join(self.heads)}")
        return store.name

    @property
    def layout(self) -> str:
        return "flat" if self.ete_cfg.mode == "electrode" else "padded"

    def batches(self, store: Store, split: str | None, cached: dict | None = None):
        """Fixed-size batches of one store's split in store order (the last one filled), each
        with its number of real samples; from ``cached`` features when given."""
        if cached is None:
            for raw in graph_batches([store], split, self.batch_size, tokens=self.ete_cfg.tokens(),
                                     epochs=1, drop_remainder=False, shuffle=False,
                                     layout=self.layout, shard_index=0, shard_count=1):
                yield graph_inputs(raw, self.k), int(raw["real_B"].sum())
            return
        pos = store.indices(split)
        for start in range(0, len(pos), self.batch_size):
            chunk = pos[start:start + self.batch_size]
            n = len(chunk)
            chunk = np.concatenate([chunk, np.full(self.batch_size - n, chunk[0])])
            yield graph_inputs(cached_batch(cached, store, chunk), self.k), n

    def cache(self, store: Store, ete_params) -> dict:
        """The (frozen) ETE's features of every window of a store, computed once, in store order."""
        feats, ids, mask = [], [], []
        for batch, n in self.batches(store, None):
            feats.append(np.asarray(self.encode(ete_params, batch))[:n])
            ids.append(batch["electrodes_BxE"][:n])
            mask.append(batch["mask_BxE"][:n])
        return {"features": np.concatenate(feats), "electrodes": np.concatenate(ids), "mask": np.concatenate(mask)}

    def run(self, store: Store, split: str | None = "test", params=None, cached: dict | None = None) -> dict:
        """A store's windows of ``split`` (all with None), in store order: class probabilities,
        labels, subjects, positions, pooled graph embeddings and per-electrode features."""
        head = self.head_of(store)
        pos = store.indices(split)
        if len(pos) == 0:
            raise TrainingError(f"{store.path}: no windows in split {split!r}")
        out = self.score(self.batches(store, split, cached), head, params)
        return {**out, "labels": store.labels[pos], "subjects": store.subject_of[pos], "positions": pos}

    def score(self, batches, head: str, params=None) -> dict:
        """``head``'s class probabilities, pooled graph embeddings, standardised per-electrode
        features and electrode masks of ``(graph batch, real samples)`` pairs, concatenated."""
        params = self.params if params is None else params
        probs, pooled, feats, mask = [], [], [], []
        for batch, n in batches:
            p, f, logits = self._forward(params, batch)
            probs.append(np.asarray(jax.nn.softmax(logits[head], -1))[:n])
            pooled.append(np.asarray(p)[:n])
            feats.append(np.asarray(f)[:n])
            mask.append(batch["mask_BxE"][:n])
        return {"probs": np.concatenate(probs), "pooled": np.concatenate(pooled), "features": np.concatenate(feats),
                "mask": np.concatenate(mask)}

    def evaluate(self, store: Store, split: str = "test", params=None, cached: dict | None = None) -> dict:
        out = self.run(store, split, params, cached)
        return classification(out["labels"], out["probs"], len(store.classes))


def cached_batch(cached: dict, store: Store, positions, dataset: int = 0) -> dict:
    """A graph batch of cached features at store ``positions``."""
    positions = np.asarray(positions)
    return {"features_BxExF": cached["features"][positions], "electrodes_BxE": cached["electrodes"][positions],
            "mask_BxE": cached["mask"][positions], "label_B": store.labels[positions].astype(np.int32),
            "dataset_B": np.full(len(positions), dataset, np.int32)}


def load_finetuned(workdir, batch_size: int = 32) -> Finetuned:
    """The best fine-tuned model of a ``eegpt finetune`` workdir."""
    workdir = Path(workdir)
    meta_path = workdir / "finetune.json"
    if not meta_path.exists():
        raise TrainingError(f"{workdir}: no fine-tuned model here (finetune.json missing); run eegpt finetune")
    meta = json.loads(meta_path.read_text())
    ete_cfg = pretrain_config(meta["ete_config"])
    teg_cfg = TEGConfig(**dict(meta["teg"], heads_classes=tuple(tuple(h) for h in meta["teg"]["heads_classes"])))
    ete_graphdef, ete_abstract = abstract_module(lambda: ETE(ete_cfg.ete_config(), rngs=nnx.Rngs(0)))
    _, teg_abstract = abstract_module(lambda: TEG(teg_cfg, rngs=nnx.Rngs(0)))
    width = ete_cfg.ete_config().d_model
    abstract = {"ete": ete_abstract, "teg": teg_abstract,
                "norm": {k: jax.ShapeDtypeStruct((VOCAB, width), jnp.float32) for k in ("mean", "std")}}
    ckpt = Checkpoints(workdir / "best", max_to_keep=1)
    try:
        restored, _ = ckpt.restore_state(None, {"params": abstract})
    finally:
        ckpt.close()
    return Finetuned(ete_cfg, ete_graphdef, teg_cfg, restored["params"], meta["finetune"]["k_neighbours"], batch_size)


# ----------------------------------------------------------------------------- training

def _optimizer(ft: FinetuneConfig):
    def schedule(lr):
        return optax.warmup_cosine_decay_schedule(0.0, lr, max(1, min(ft.warmup, ft.steps - 1)),
                                                  max(ft.steps, 2), end_value=lr * 0.05)

    def adamw(lr):
        return optax.adamw(schedule(lr), weight_decay=ft.weight_decay)

    labels = {"teg": "teg", "ete": "ete" if ft.train_ete else "frozen", "norm": "frozen"}
    tx = optax.multi_transform({"teg": adamw(ft.lr), "ete": adamw(ft.ete_lr), "frozen": optax.set_to_zero()},
                               lambda params: {part: jax.tree.map(lambda _: labels[part], params[part])
                                               for part in params})
    return optax.chain(optax.clip_by_global_norm(ft.clip), tx)


def _class_weights(stores: list[Store], split_positions, balanced: bool) -> np.ndarray:
    """[datasets, max classes]: inverse class frequency in each dataset's training windows."""
    n_max = max(len(s.classes) for s in stores)
    out = np.zeros((len(stores), n_max), np.float32)
    for d, (s, pos) in enumerate(zip(stores, split_positions)):
        counts = np.bincount(s.labels[pos], minlength=len(s.classes)).astype(float)
        out[d, : len(counts)] = (counts.sum() / (len(counts) * np.maximum(counts, 1))) if balanced else 1.0
    return out


def finetune(ete_dir, stores, workdir, ft: FinetuneConfig = FinetuneConfig(), *, progress: bool = True,
             track: bool = True) -> dict:
    """Fine-tune (or resume) in ``workdir`` on the training windows of ``stores``, selecting on
    their validation windows; writes ``workdir/finetune.json`` and returns it."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stores = open_stores(stores)
    names = [s.name for s in stores]
    if len(set(names)) != len(names):
        raise TrainingError(f"two stores of one dataset ({', '.join(names)}); give each dataset once")
    train_pos = [s.indices("train") for s in stores]
    for s, pos in zip(stores, train_pos):
        if len(pos) == 0:
            raise TrainingError(f"{s.path}: no training windows to fine-tune on")
    val_sets = [s for s in stores if len(s.indices("val"))]
    ete_graphdef, ete_params, ete_cfg = load_ete(ete_dir)
    if ete_cfg.mode == "multichannel" and len({s.window_samples for s in stores}) > 1:
        raise TrainingError("a multichannel ETE needs stores with one window length (padded tokens would be seen)")
    for s in stores:
        if ete_cfg.tokens().count(s.window_samples) == 0:
            raise TrainingError(f"{s.path}: windows of {s.window_samples} samples are shorter than one "
                                f"{ete_cfg.tokens().token_len}-sample token")
    tcfg = teg_config(ete_cfg, stores, ft)
    teg_graphdef, teg_params = nnx.split(TEG(tcfg, rngs=nnx.Rngs(ft.seed)))
    datasets = [{"name": s.name, "task": s.task, "classes": s.classes, "store": str(s.path)} for s in stores]
    model = Finetuned(ete_cfg, ete_graphdef, tcfg, None, ft.k_neighbours, ft.batch_size)
    tx = _optimizer(ft)
    sizes = np.asarray([len(p) for p in train_pos], float)
    weights = sizes ** (1.0 / ft.temperature)
    weights /= weights.sum()
    if ft.train_ete:  # the encoder changes: stream tokens; standardise with 8 batches per store
        def sample(st):
            for _, b in zip(range(8), graph_batches([st], "train", ft.batch_size, tokens=ete_cfg.tokens(), epochs=1,
                                                    drop_remainder=False, layout=model.layout, seed=123,
                                                    shard_index=0, shard_count=1)):
                real = b["real_B"]
                yield np.asarray(model.encode(ete_params, b))[real], b["electrodes_BxE"][real], b["mask_BxE"][real]

        norm = feature_norm(chunk for st in stores for chunk in sample(st))
        cache = None
        data_it = iter(graph_batches(stores, "train", ft.batch_size, tokens=ete_cfg.tokens(),
                                     weights=weights.tolist(), seed=ft.seed,
                                     layout=model.layout, mix="batch", shard_index=0, shard_count=1))
    else:  # frozen: every window's features once, then the graph trains on them alone
        cache = {s.name: model.cache(s, ete_params) for s in stores}
        norm = feature_norm((cache[s.name][k][p] for k in ("features", "electrodes", "mask"))
                            for s, p in zip(stores, train_pos))
        data_it = None

    def next_batch(step_no: int) -> dict:
        if data_it is not None:
            return graph_inputs(next(data_it), ft.k_neighbours)
        rng = np.random.default_rng((ft.seed, step_no))  # a pure function of the step: resumable
        d = int(rng.choice(len(stores), p=weights))
        pick = rng.choice(train_pos[d], ft.batch_size, replace=len(train_pos[d]) < ft.batch_size)
        return graph_inputs(cached_batch(cache[stores[d].name], stores[d], pick, d), ft.k_neighbours)

    params = {"ete": ete_params, "teg": nnx.to_pure_dict(teg_params), "norm": norm}
    state = {"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32)}
    class_w = jnp.asarray(_class_weights(stores, train_pos, ft.class_balanced))

    def loss_fn(params, batch):
        _, _, logits = forward(ete_graphdef, model.teg_graphdef, params, batch)
        total, label = 0.0, batch["label_B"]
        for d, name in enumerate(model.heads):  # every head scores the batch; each sample counts for its own
            lg = logits[name]
            ce = optax.softmax_cross_entropy_with_integer_labels(lg, jnp.clip(label, 0, lg.shape[1] - 1))
            total = total + jnp.sum(ce * (batch["dataset_B"] == d) * class_w[d][label])
        return total / jnp.maximum(jnp.sum(class_w[batch["dataset_B"], label]), 1e-6)

    @jax.jit
    def step(state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(state["params"], batch)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        return ({"params": optax.apply_updates(state["params"], updates), "opt": opt, "step": state["step"] + 1},
                {"loss": loss, "grad_norm": optax.tree.norm(grads["teg"])})

    ckpt, best_ckpt = Checkpoints(workdir / "checkpoints", max_to_keep=1), Checkpoints(workdir / "best", max_to_keep=1)
    run_meta = {"best": -1.0, "best_step": 0, "since": 0, "history": [], "stopped_early": False}
    resumed_from = ckpt.latest_step() or 0
    if resumed_from:
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
        if data_it is not None:
            state, saved = ckpt.restore(resumed_from, abstract, data_it)
        else:
            state, saved = ckpt.restore_state(resumed_from, abstract)
        if saved.get("ete_dir") != str(Path(ete_dir).resolve()) or saved.get("datasets") != names:
            raise TrainingError(f"{workdir}: holds a fine-tuning of other data or another ETE; use another --workdir")
        run_meta = saved["run"]
    tracker = make_tracker(workdir / "tb", enabled=track)
    summary_base = {"ete_dir": str(Path(ete_dir).resolve()), "ete_config": dataclasses.asdict(ete_cfg),
                    "finetune": dataclasses.asdict(ft), "teg": dataclasses.asdict(tcfg), "datasets": datasets,
                    "sampling_weights": dict(zip(names, weights.round(4).tolist()))}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=ft.steps, initial=resumed_from, desc="finetune", unit="step")
    t0 = time.perf_counter()
    try:
        for it in range(resumed_from + 1, ft.steps + 1):
            if run_meta["stopped_early"]:
                break
            state, m = step(state, next_batch(it))
            if bar:
                bar.update()
            if it % ft.eval_every and it != ft.steps:
                continue
            m = {k: float(v) for k, v in m.items()}
            if not (math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"])):
                raise TrainingError(f"finetune step {it}: loss {m['loss']}: diverged; stopped without "
                                    "saving; lower --lr")
            val = {s.name: model.evaluate(s, "val", state["params"], cache and cache[s.name])["balanced_accuracy"]
                   for s in val_sets}
            score = float(np.mean(list(val.values()))) if val else float(it)  # no val: keep the last
            run_meta["history"].append({"step": it, **m, "val_balanced_accuracy": val,
                                        "val_mean": score if val else None})
            tracker.scalars({"loss": m["loss"], "grad_norm": m["grad_norm"],
                             **{f"val/{k}": v for k, v in val.items()}}, it)
            if bar:
                bar.set_postfix(loss=f"{m['loss']:.3f}", val=f"{score:.3f}" if val else "-", refresh=False)
            if score > run_meta["best"]:
                run_meta.update(best=score, best_step=it, since=0)
                best_ckpt.save_state(it, {"params": state["params"]}, {"step": it})
            else:
                run_meta["since"] += 1
                run_meta["stopped_early"] = run_meta["since"] >= ft.patience
            meta = {"ete_dir": summary_base["ete_dir"], "datasets": names, "run": run_meta}
            if data_it is not None:
                ckpt.save(it, state, data_it, meta)
            else:
                ckpt.save_state(it, state, meta)
    finally:
        if bar:
            bar.close()
        tracker.close()
        ckpt.close()
        best_ckpt.close()
    history = run_meta["history"]
    summary = {**summary_base, "best_step": run_meta["best_step"],
               "best_val_mean": run_meta["best"] if val_sets else None,
               "selected_on": "val" if val_sets else "last step (no validation windows)",
               "steps_run": history[-1]["step"] if history else 0, "stopped_early": run_meta["stopped_early"],
               "resumed_from": resumed_from, "seconds": round(time.perf_counter() - t0, 1), "history": history}
    atomic_write(workdir / "finetune.json", lambda t: t.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def evaluate(workdir, stores, split: str = "test", plots: bool = True) -> dict:
    """Metrics of a fine-tuned model on each store's ``split``; confusion plots beside the model."""
    from eegpt.metrics import plot_confusion

    model = load_finetuned(workdir)
    out = {}
    for s in open_stores(stores):
        r = model.evaluate(s, split)
        r["task"], r["classes"], r["split"] = s.task, s.classes, split
        out[s.name] = r
        if plots:
            path = Path(workdir) / f"confusion-{s.name}-{split}.png"
            plot_confusion(r["confusion"], s.classes, path,
                           f"{s.name} ({split}): balanced accuracy {r['balanced_accuracy']:.3f}")
            r["confusion_plot"] = str(path)
    return out
