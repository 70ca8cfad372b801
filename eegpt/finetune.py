"""Joint multi-task fine-tuning of the TEG and its heads on a frozen, pretrained ETE.

With the ETE frozen (as EEGPT fine-tunes), every window's per-electrode summary features are
computed once (:func:`extract`) and the graph trains on them: batches mix the datasets by
temperature-weighted sampling, each sample is scored by its own dataset's head, the loss is
class-balanced, and training stops early when the mean balanced accuracy over the datasets'
validation subjects stops improving. The best graph is saved with the shared checkpoint code.
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
from eegpt.electrodes import ID, positions
from eegpt.pipeline import tokenize
from eegpt.presets import preset
from eegpt.recording import atomic_write
from eegpt.store import Store, open_stores
from eegpt.train import PretrainConfig, TrainingError, init_state
from ete import features as ete_features
from teg import TEG, TEGConfig, electrode_edges


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.05
    temperature: float = 2.0        # dataset sampling weight ∝ windows^(1/T)
    class_balanced: bool = True
    eval_every: int = 100
    patience: int = 5               # evaluations without improvement before stopping
    k_neighbours: int | None = None  # None: fully connected electrode graphs
    pool: str = "attention"
    seed: int = 0


# ----------------------------------------------------------------------------- the frozen encoder

def load_ete(ete_dir):
    """(graphdef, params, PretrainConfig) of a pretraining run's latest checkpoint."""
    ete_dir = Path(ete_dir)
    if not (ete_dir / "config.json").exists():
        raise TrainingError(f"{ete_dir}: no pretraining run here (config.json missing); run eegpt pretrain")
    raw = json.loads((ete_dir / "config.json").read_text())
    raw["mesh"] = tuple(raw.get("mesh", (0, 1)))
    raw["model"] = tuple(tuple(kv) for kv in raw.get("model", ()))
    cfg = PretrainConfig(**raw)
    graphdef, state, _, _ = init_state(cfg)
    ckpt = Checkpoints(ete_dir / "checkpoints")
    if ckpt.latest_step() is None:
        raise TrainingError(f"{ete_dir}: no checkpoint to load")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    restored, _ = ckpt.restore_state(None, abstract)
    ckpt.close()
    return graphdef, restored["params"], cfg


def extract(graphdef, params, cfg: PretrainConfig, store: Store, batch_size: int = 64) -> dict:
    """Per-electrode ETE summary features of every window of a store, in store order."""
    tokens_cfg = cfg.tokens()
    fn = jax.jit(lambda p, t, ids: ete_features(nnx.merge(graphdef, p), t, ids)[0])
    feats = []
    n = len(store)
    ids_all = np.zeros((n, max(len(m) for m in store.montages)), np.int32)
    mask = np.zeros_like(ids_all, bool)
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        samples = [store[i] for i in idx]
        e = max(len(s.electrodes) for s in samples)
        t = np.zeros((batch_size, e, tokens_cfg.count(store.window_samples), tokens_cfg.token_len), np.float32)
        ids = np.zeros((batch_size, e), np.int32)
        for j, s in enumerate(samples):  # the last batch is padded to keep one compiled shape
            t[j, : len(s.electrodes)] = tokenize(s.x, tokens_cfg)
            ids[j, : len(s.electrodes)] = [ID[x] for x in s.electrodes]
            ids_all[idx[j], : len(s.electrodes)] = ids[j, : len(s.electrodes)]
            mask[idx[j], : len(s.electrodes)] = True
        feats.append(np.asarray(fn(params, t, ids))[: len(idx)])
    width = feats[0].shape[-1]
    out = np.zeros((n, ids_all.shape[1], width), np.float32)
    out[:, : max(f.shape[1] for f in feats)] = np.concatenate(
        [np.pad(f, ((0, 0), (0, ids_all.shape[1] - f.shape[1]), (0, 0))) for f in feats])
    out[~mask] = 0.0
    return {"features": out, "electrodes": ids_all, "mask": mask, "labels": store.labels.copy(),
            "subjects": store.subject_of.copy(), "splits": store.split_of.copy()}


def standardize(c: dict) -> dict:
    """Standardise each electrode slot's features with training-window statistics.

    A frozen next-token ETE's features differ far more between electrodes than between windows
    (measured on the synthetic corpus: std 0.49 across electrodes, 0.017 across windows), so the
    window-to-window signal the heads need is invisible until each slot is centred and scaled.
    """
    train = c["splits"] == "train"
    mu = c["features"][train].mean(0, keepdims=True)
    sd = c["features"][train].std(0, keepdims=True) + 1e-6
    out = dict(c, features=np.where(c["mask"][..., None], (c["features"] - mu) / sd, 0.0).astype(np.float32))
    out["norm"] = (mu[0], sd[0])
    return out


# ----------------------------------------------------------------------------- the graph

def teg_config(ete_cfg: PretrainConfig, stores: list[Store], ft: FinetuneConfig) -> TEGConfig:
    _, base = preset(ete_cfg.preset)
    return dataclasses.replace(base, in_features=ete_cfg.ete_config().d_model, pool=ft.pool,
                               heads_classes=tuple((s.name, len(s.classes)) for s in stores))


def _pad(a: np.ndarray, e_max: int) -> np.ndarray:
    return np.pad(a, [(0, 0), (0, e_max - a.shape[1])] + [(0, 0)] * (a.ndim - 2))


def make_batch(cached: list[dict], picks: list[tuple[int, int]], e_max: int, k=None) -> dict:
    """A graph batch from cached features: picks are (dataset, window) pairs."""
    feats = np.stack([_pad(cached[d]["features"][[w]], e_max)[0] for d, w in picks])
    ids = np.stack([_pad(cached[d]["electrodes"][[w]], e_max)[0] for d, w in picks])
    mask = np.stack([_pad(cached[d]["mask"][[w]], e_max)[0] for d, w in picks])
    senders, receivers = electrode_edges(ids, mask, positions(), k, bucket=True)
    return {"features": feats, "electrodes": ids, "mask": mask, "senders": senders, "receivers": receivers,
            "dataset": np.asarray([d for d, _ in picks], np.int32),
            "label": np.asarray([cached[d]["labels"][w] for d, w in picks], np.int32)}


class Graph:
    """A TEG's structure with what scoring needs: head names, padding width, edge rule."""

    def __init__(self, graphdef, names: list[str], e_max: int, k: int | None):
        self.graphdef, self.names, self.e_max, self.k = graphdef, names, e_max, k
        self.logits = jax.jit(lambda p, b: nnx.merge(graphdef, p)(
            b["features"], b["electrodes"], b["mask"], b["senders"], b["receivers"])[1])

    def predict(self, params, cached: list[dict], d: int, split: str, batch_size: int = 64):
        """Class probabilities of dataset ``d``'s windows in ``split``: (probabilities, labels, positions)."""
        pos = np.flatnonzero(cached[d]["splits"] == split)
        probs = []
        for start in range(0, len(pos), batch_size):
            chunk = pos[start:start + batch_size]
            picks = [(d, int(w)) for w in chunk] + [(d, int(chunk[0]))] * (batch_size - len(chunk))
            logits = self.logits(params, make_batch(cached, picks, self.e_max, self.k))[self.names[d]]
            probs.append(np.asarray(jax.nn.softmax(logits, -1))[: len(chunk)])
        return (np.concatenate(probs) if probs else np.zeros((0, 1))), cached[d]["labels"][pos], pos


def finetune(ete_dir, stores, workdir, ft: FinetuneConfig = FinetuneConfig(), *, progress=True,
             cached: list[dict] | None = None) -> dict:
    """Fine-tune the graph on ``stores`` over the frozen ETE of ``ete_dir``; writes ``workdir``."""
    from sklearn.metrics import balanced_accuracy_score

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stores = open_stores(stores)
    graphdef_e, params_e, ete_cfg = load_ete(ete_dir)
    if cached is None:
        cached = [extract(graphdef_e, params_e, ete_cfg, s) for s in stores]
    for s, c in zip(stores, cached):
        if not (c["splits"] == "train").any() or not (c["splits"] == "val").any():
            raise TrainingError(f"{s.path}: needs train and val subjects to fine-tune and select")
    cached = [standardize(c) for c in cached]
    tcfg = teg_config(ete_cfg, stores, ft)
    model = TEG(tcfg, rngs=nnx.Rngs(ft.seed))
    graphdef, params = nnx.split(model)
    params = nnx.to_pure_dict(params)
    names = [name for name, _ in tcfg.heads_classes]
    e_max = max(c["mask"].shape[1] for c in cached)
    graph = Graph(graphdef, names, e_max, ft.k_neighbours)
    schedule = optax.warmup_cosine_decay_schedule(0.0, ft.lr, ft.warmup, max(ft.steps, ft.warmup + 1), ft.lr * 0.05)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=ft.weight_decay))
    opt = tx.init(params)
    train_pos = [np.flatnonzero(c["splits"] == "train") for c in cached]
    sizes = np.asarray([len(p) for p in train_pos], float)
    weights = sizes ** (1 / ft.temperature)
    weights /= weights.sum()
    class_w = []
    for s, c, p in zip(stores, cached, train_pos):
        counts = np.bincount(c["labels"][p], minlength=len(s.classes)).astype(float)
        w = counts.sum() / (len(counts) * np.maximum(counts, 1)) if ft.class_balanced else np.ones_like(counts)
        class_w.append(w)
    n_max = max(len(w) for w in class_w)
    class_w_arr = jnp.asarray(np.stack([np.pad(w, (0, n_max - len(w))) for w in class_w]))

    def loss_fn(p, b):
        logits = nnx.merge(graphdef, p)(b["features"], b["electrodes"], b["mask"], b["senders"], b["receivers"])[1]
        total = 0.0
        for d, name in enumerate(names):
            lg = logits[name]
            lab = jnp.clip(b["label"], 0, lg.shape[1] - 1)
            ce = optax.softmax_cross_entropy_with_integer_labels(lg, lab)
            w = (b["dataset"] == d) * class_w_arr[d][lab]
            total = total + jnp.sum(ce * w)
        return total / jnp.maximum(jnp.sum(class_w_arr[b["dataset"], b["label"]]), 1e-6)

    @jax.jit
    def step(p, o, b):
        loss, g = jax.value_and_grad(loss_fn)(p, b)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, loss

    rng = np.random.default_rng(ft.seed)
    best, best_params, best_step, since, history = -1.0, params, 0, 0, []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=ft.steps, desc="finetune", unit="step")
    t0 = time.perf_counter()
    for it in range(1, ft.steps + 1):
        ds = rng.choice(len(cached), size=ft.batch_size, p=weights)
        picks = [(int(d), int(rng.choice(train_pos[d]))) for d in ds]
        params, opt, loss = step(params, opt, make_batch(cached, picks, e_max, ft.k_neighbours))
        if bar:
            bar.update()
        if it % ft.eval_every == 0 or it == ft.steps:
            loss = float(loss)
            if not np.isfinite(loss):
                raise TrainingError(f"finetune step {it}: loss {loss}: diverged; lower --lr")
            val = {}
            for d, name in enumerate(names):
                probs, labels, _ = graph.predict(params, cached, d, "val")
                val[name] = float(balanced_accuracy_score(labels, probs.argmax(1)))
            score = float(np.mean(list(val.values())))
            history.append({"step": it, "loss": loss, "val_balanced_accuracy": val, "mean": score})
            if bar:
                bar.set_postfix(loss=f"{loss:.3f}", val=f"{score:.3f}", refresh=False)
            if score > best:
                best, best_params, best_step, since = score, params, it, 0
            else:
                since += 1
                if since >= ft.patience:
                    break
    if bar:
        bar.close()
    ckpt = Checkpoints(workdir / "checkpoints", max_to_keep=1)
    ckpt.save_state(best_step, {"params": best_params}, {"stores": [str(s.path) for s in stores]})
    ckpt.close()
    summary = {"ete_dir": str(Path(ete_dir).resolve()), "stores": [str(s.path) for s in stores],
               "finetune": dataclasses.asdict(ft), "teg": dataclasses.asdict(tcfg), "best_val_mean": best,
               "best_step": best_step, "steps_run": history[-1]["step"] if history else 0, "history": history,
               "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write(workdir / "finetune.json", lambda t: t.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary
