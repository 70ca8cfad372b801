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
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from eegpt import sharding, trainer
from eegpt.readout import linear_readout
from eegpt.checkpoint import Checkpoints
from eegpt.errors import EEGInputError, TrainingError, atomic_write, check_positive
from eegpt.features import SPECTRAL, node_views, node_width
from eegpt.selection import Selection, calibrated
from eegpt.model import EEGPT, EEGPTConfig, HeadSpec, abstract_module, cached_batch, forward, graph_inputs, save
from eegpt.model import abstract_params as abstract_params_of
from eegpt.pipeline import graph_batches
from eegpt.presets import preset
from eegpt.store import Store, open_stores
from eegpt.tracking import make_tracker
from eegpt.train import PretrainConfig
from ete import ETE
from teg import TEG, TEGConfig
from teg.model import VOCAB_SIZE as VOCAB
from teg.objective import heads_loss


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 600                # optimizer steps (a rerun with more resumes)
    batch_size: int = 32            # windows per step (global)
    lr: float = 1e-3                # learning rate of the graph and heads
    train_ete: bool = False         # train the ETE too (default: frozen, as EEGPT)
    # The ETE's learning rate when it trains. Small, because the graph's random gates send large
    # gradients into the encoder at first: on the quick demo (240 steps, seed 0) 3e-4 and 1e-4
    # collapsed the features (ER and MI at chance), 3e-5 did not (ER 0.57, MI 0.67 on validation).
    ete_lr: float = 3e-5            # the ETE's learning rate with --train-ete
    warmup: int = 50                # linear warm-up steps
    weight_decay: float = 0.05      # AdamW weight decay
    clip: float = 1.0               # gradient clipping by global norm
    temperature: float = 2.0        # dataset sampling weight ∝ training windows^(1/T)
    class_balanced: bool = True     # weight each class by its inverse frequency
    eval_every: int = 100           # validation (and checkpoint) interval
    patience: int = 4               # evaluations without improvement before stopping
    k_neighbours: int | None = None  # edges to the k nearest electrodes by position (none: all pairs)
    pool: str = "attention"         # readout over electrodes: "attention" or "mean"
    graph_layers: int | None = None  # graph attention layers (none: the ETE preset's; base: 3)
    gate_start: str = "random"      # the graph's node gates: "random" or "ones" (see teg.TEG)
    seed: int = 0                   # the graph's initialisation and the batches drawn
    mesh: tuple[int, int] = (0, 1)  # DATA,FSDP devices (DATA 0: all remaining devices)
    nodes: str = "ete"              # per-electrode graph input: views of eegpt.features.NODES joined by + (ete+bands)
    readout: str = "none"           # per-electrode linear readout beside the pooled vector: none, classical, all
    readout_init: str = "zero"      # "zero", or "lr": fitted by logistic regression, the graph's output starting at 0
    readout_lr: float | None = None  # the readout's learning rate (none: --lr; 0: kept as it starts)
    readout_search: str = "combinations"  # views tried for the "lr" start: every combination, "each" alone and all, or combinations+ete (the best classical combination, with and without the ETE)
    answer_accuracy: float = 0.9    # the copilot answers where validation windows were this accurate (else: uncertain)

    def __post_init__(self):
        check_positive(self, "steps", "batch_size", "lr", "ete_lr", "clip", "temperature", "eval_every", "patience",
                       "k_neighbours", "graph_layers")
        if self.warmup < 0 or self.weight_decay < 0:
            raise EEGInputError(f"--warmup {self.warmup} / --weight-decay {self.weight_decay}: must be >= 0")
        classical = [v for v in node_views(self.nodes) if v != "ete"]
        if self.readout not in ("none", "classical", "all") or (self.readout == "classical" and not classical):
            raise EEGInputError(f"--readout {self.readout}: choose none, all, or classical (with --nodes bands or "
                                "erp views)")
        if self.readout_init not in ("zero", "lr") or (self.readout_init == "lr" and (
                self.readout == "none" or self.train_ete)):
            raise EEGInputError(f"--readout-init {self.readout_init}: choose zero, or lr with a --readout and a "
                                "frozen ETE")
        if not 0 < self.answer_accuracy <= 1:
            raise EEGInputError(f"--answer-accuracy {self.answer_accuracy}: must be in (0, 1]")
        if self.readout_search not in ("combinations", "each", "combinations+ete"):
            raise EEGInputError(f"--readout-search {self.readout_search}: choose combinations, each or combinations+ete")
        if self.pool not in ("attention", "mean") or self.gate_start not in ("random", "ones"):
            raise EEGInputError(f"--pool {self.pool} / --gate-start {self.gate_start}: choose attention|mean and "
                                "random|ones")


# ----------------------------------------------------------------------------- the pretrained encoder

def pretrain_config(raw: dict) -> PretrainConfig:
    """A ``PretrainConfig`` from its saved JSON (lists back to tuples)."""
    raw = dict(raw, mesh=tuple(raw.get("mesh", (0, 1))), model=tuple(tuple(kv) for kv in raw.get("model", ())))
    return PretrainConfig(**raw)


def load_ete(ete_dir):
    """(graphdef, params, PretrainConfig) of a pretraining run's latest checkpoint, of an exported
    encoder (``eegpt.foundation.export``), or of ``"foundation"``: the one the package ships."""
    from eegpt.foundation import PARAMS_FILE, read_exported, resolve

    ete_dir = resolve(ete_dir)
    if not (ete_dir / "config.json").exists():
        raise TrainingError(f"{ete_dir}: no pretraining run here (config.json missing); run eegpt pretrain")
    cfg = pretrain_config(json.loads((ete_dir / "config.json").read_text()))
    # the parameters alone: no optimizer state is built or read
    graphdef, abstract = abstract_module(lambda: ETE(cfg.ete_config(), rngs=nnx.Rngs(0)))
    if (ete_dir / PARAMS_FILE).exists():  # exported: float16 parameters, no checkpoints
        return graphdef, read_exported(ete_dir, abstract), cfg
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
    """The graph's config for fine-tuning: the preset's, fed the node views' width and the readout asked for."""
    _, base = preset(ete_cfg.preset)
    width = node_width(ft.nodes, ete_cfg.ete_config().d_model)
    classical = width - (ete_cfg.ete_config().d_model if "ete" in node_views(ft.nodes) else 0)
    readout = {"none": 0, "classical": classical, "all": width}[ft.readout]
    return dataclasses.replace(base, in_features=width, readout_features=readout, pool=ft.pool,
                               layers=base.layers if ft.graph_layers is None else ft.graph_layers,
                               gate_start=ft.gate_start,
                               heads_classes=tuple((s.name, len(s.classes)) for s in stores))


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


# ----------------------------------------------------------------------------- training

def _optimizer(ft: FinetuneConfig):
    def adamw(lr):
        return optax.adamw(trainer.schedule(lr, ft.warmup, ft.steps, end=0.05), weight_decay=ft.weight_decay)

    labels = {"teg": "teg", "ete": "ete" if ft.train_ete else "frozen", "norm": "frozen"}
    readout_lr = ft.lr if ft.readout_lr is None else ft.readout_lr

    def label(params):
        out = {part: jax.tree.map(lambda _: labels[part], params[part]) for part in params}
        if "readout" in out["teg"]:  # each head's per-electrode readout: its own rate, or kept as started
            out["teg"]["readout"] = jax.tree.map(lambda _: "readout" if readout_lr else "frozen",
                                                 out["teg"]["readout"])
        return out

    tx = optax.multi_transform({"teg": adamw(ft.lr), "ete": adamw(ft.ete_lr), "frozen": optax.set_to_zero(),
                                "readout": adamw(readout_lr) if readout_lr else optax.set_to_zero()}, label)
    return optax.chain(optax.clip_by_global_norm(ft.clip), tx)


def _class_weights(stores: list[Store], split_positions, balanced: bool) -> np.ndarray:
    """[datasets, max classes]: inverse class frequency in each dataset's training windows."""
    n_max = max(len(s.classes) for s in stores)
    out = np.zeros((len(stores), n_max), np.float32)
    for d, (s, pos) in enumerate(zip(stores, split_positions)):
        counts = np.bincount(s.labels[pos], minlength=len(s.classes)).astype(float)
        out[d, : len(counts)] = (counts.sum() / (len(counts) * np.maximum(counts, 1))) if balanced else 1.0
    return out


def _provenance(ete_dir, ete_cfg: PretrainConfig, stores: list[Store], train_pos) -> dict:
    """Which data trained the model (said by predict, the copilot and the EMR)."""
    encoder_data = []
    metrics = Path(ete_dir) / "metrics.json"
    if metrics.exists():
        for path in json.loads(metrics.read_text()).get("stores", []):
            index = Path(path) / "index.json"
            encoder_data.append(json.loads(index.read_text())["card"] if index.exists() else Path(path).name)
    return {"datasets": [{"card": s.name, "task": s.task, "subjects": int(len(np.unique(s.subject_of[p]))),
                          "windows": int(len(p)), "synthetic": s.name.startswith("synthetic-")}
                         for s, p in zip(stores, train_pos)],
            "encoder": {"preset": ete_cfg.preset, "steps": ete_cfg.steps, "data": encoder_data},
            "command": shlex.join(sys.argv), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _checked_stores(stores, ft: FinetuneConfig, mesh, hosts: int) -> list[Store]:
    """The stores, opened and refused where they cannot be fine-tuned on, before any work."""
    stores = open_stores(stores)
    for s in stores:
        if s.index.get("continuous"):
            raise TrainingError(f"{s.path}: a continuous store (prepare --continuous) holds no labels to fine-tune "
                                "on; prepare the card without --continuous")
        if len(s.indices("train")) < hosts:
            raise TrainingError(f"{s.path}: no training windows to fine-tune on")
    names = [s.name for s in stores]
    if len(set(names)) != len(names):
        raise TrainingError(f"two stores of one dataset ({', '.join(names)}); give each dataset once")
    if ft.batch_size % mesh.devices.size or ft.batch_size % hosts:
        raise TrainingError(f"--batch-size {ft.batch_size} does not split over {mesh.devices.size} devices "
                            f"and {hosts} hosts")
    if SPECTRAL & set(node_views(ft.nodes)) and len({s.index["sfreq"] for s in stores}) > 1:
        raise TrainingError(f"--nodes {ft.nodes} needs stores prepared at one rate")
    return stores


def _check_ete(ete_cfg: PretrainConfig, stores: list[Store], ft: FinetuneConfig, hosts: int) -> None:
    """Refuse an encoder the stores' windows or the hosts cannot be fine-tuned with."""
    if ete_cfg.mode == "multichannel" and len({s.window_samples for s in stores}) > 1:
        raise TrainingError("a multichannel ETE needs stores with one window length (padded tokens would be seen)")
    if ft.train_ete and hosts > 1:
        raise TrainingError("--train-ete streams tokens whose batch shapes differ between hosts; fine-tune "
                            "the frozen ETE across hosts, or train the encoder on one host")
    for s in stores:
        if ete_cfg.tokens().count(s.window_samples) == 0:
            raise TrainingError(f"{s.path}: windows of {s.window_samples} samples are shorter than one "
                                f"{ete_cfg.tokens().token_len}-sample token")


def _encoded(model: EEGPT, ete_params, ete_cfg: PretrainConfig, stores, all_train, ft: FinetuneConfig,
             weights, features_out) -> tuple[dict | None, dict, object]:
    """(cache, norm, data iterator): with a frozen ETE every window's features once (the cache; no
    iterator), with a trainable one a stream of token batches (no cache) standardised by 8 batches
    per store; ``norm`` the per-electrode statistics of the training windows' features."""
    if ft.train_ete:
        def sample(st):
            for _, b in zip(range(8), graph_batches([st], "train", ft.batch_size, tokens=ete_cfg.tokens(), epochs=1,
                                                    drop_remainder=False, layout=model.cfg.layout, seed=123,
                                                    shard_index=0, shard_count=1)):
                real = b["real_B"]
                yield np.asarray(model.encode(ete_params, b))[real], b["electrodes_BxE"][real], b["mask_BxE"][real]

        data_it = iter(graph_batches(stores, "train", ft.batch_size, tokens=ete_cfg.tokens(),
                                     weights=weights.tolist(), seed=ft.seed,
                                     layout=model.cfg.layout, mix="batch", shard_index=0, shard_count=1))
        return None, feature_norm(chunk for st in stores for chunk in sample(st)), data_it
    cache = {s.name: model.cache(s, ete_params) for s in stores}
    if features_out is not None:
        features_out.update(cache)
    norm = feature_norm((cache[s.name][k][p] for k in ("features", "electrodes", "mask"))
                        for s, p in zip(stores, all_train))
    return cache, norm, None


def _linear_start(model: EEGPT, teg_pure: dict, stores, cache, norm, all_train, ft: FinetuneConfig,
                  workdir: Path, resuming: bool) -> tuple[dict, dict | None]:
    """(graph parameters, the views and C each head's start chose): the readout fitted as a logistic
    regression (``eegpt.readout.linear_readout``) when ``ft.readout_init`` is "lr". Resuming, the
    checkpoint holds the readout, so the search is not run again (on the full demo it takes most of
    the stage) and the settings reported before are returned."""
    before = workdir / "finetune.json"
    if ft.readout_init != "lr":
        return teg_pure, None
    if resuming and before.exists():
        return teg_pure, json.loads(before.read_text()).get("readout_start")
    # the readout's columns by view, in column order: the classical views, and with readout "all"
    # the ETE's features too, so the search can choose the encoder's view like any other
    views = [(v, node_width(v, model.cfg.ete.d_model)) for v in node_views(ft.nodes) if v != "ete" or ft.readout == "all"]
    return linear_readout(teg_pure, model.heads, stores, cache, norm, all_train, views, ft.readout_search)


def _train_step(ete_graphdef, model: EEGPT, tx, class_w, state_sh):
    """The jitted step: the heads' class-weighted loss (``teg.objective``), AdamW, the state donated."""
    cfg = model.cfg

    def loss_fn(params, batch):
        _, _, logits = forward(ete_graphdef, model.teg_graphdef, params, batch, cfg.band_sfreq, cfg.nodes,
                               cfg.contiguous)
        return heads_loss(logits, model.heads, batch["label_B"], batch["dataset_B"], class_w)

    def step(state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(state["params"], batch)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        return ({"params": optax.apply_updates(state["params"], updates), "opt": opt, "step": state["step"] + 1},
                {"loss": loss, "grad_norm": optax.tree.norm(grads["teg"])})

    # the batch arrives already placed on the mesh (each host's rows), so only the state is pinned
    return trainer.compile_step(step, state_sh)


def _batch_source(stores, train_pos, weights, cache, data_it, ft: FinetuneConfig, host: int, hosts: int):
    """``next_batch(step) -> graph batch`` of this host's rows: from the token stream (a trainable
    ETE), or drawn from the cached features as a pure function of the step (so a resumed run draws
    what the uninterrupted one would), one dataset per step chosen by the sampling weights."""
    def next_batch(step_no: int) -> dict:
        if data_it is not None:
            return graph_inputs(next(data_it), ft.k_neighbours)
        rng = np.random.default_rng((ft.seed, step_no))
        d = int(rng.choice(len(stores), p=weights))      # the same dataset on every host
        if hosts > 1:
            rng = np.random.default_rng((ft.seed, step_no, host))
        per_host = ft.batch_size // hosts
        pick = rng.choice(train_pos[d], per_host, replace=len(train_pos[d]) < per_host)
        return sharding.host_graph_batch(cached_batch(cache[stores[d].name], stores[d], pick, d), ft.k_neighbours,
                                          host, hosts)

    return next_batch


def _resumed(ckpt: Checkpoints, state, state_sh, data_it, ete_dir, names, workdir: Path):
    """(state, run record, step resumed from): the last checkpoint of this fine-tuning when there is
    one (refused when it fine-tuned other data or another ETE), else the fresh state from step 0."""
    run = {"best": -1.0, "best_step": 0, "since": 0, "history": [], "stopped_early": False}
    resumed_from = ckpt.latest_step() or 0
    if not resumed_from:
        return state, run, 0
    abstract = jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh), state, state_sh)
    state, saved = (ckpt.restore(resumed_from, abstract, data_it) if data_it is not None
                    else ckpt.restore_state(resumed_from, abstract))
    if saved.get("ete_dir") != str(Path(ete_dir).resolve()) or saved.get("datasets") != names:
        raise TrainingError(f"{workdir}: holds a fine-tuning of other data or another ETE; use another --workdir")
    return state, saved["run"], resumed_from


def finetune(ete_dir, stores, workdir, ft: FinetuneConfig = FinetuneConfig(), *, progress: bool = True,
             track: bool = True, features_out: dict | None = None) -> dict:
    """Fine-tune (or resume) in ``workdir`` on the training windows of ``stores``, selecting on
    their validation windows; writes ``workdir/finetune.json`` and the model directory
    ``workdir/model`` (the parameters kept by selection), and returns the summary.

    ``features_out``: with a frozen ETE, filled with ``{store name: every window's encoded
    features}`` (``Model.cache``), so a caller that then scores, embeds or describes the same
    stores (the demo) need not run the encoder over them again.

    The step is jitted once with the state donated, on a ``data`` x ``fsdp`` mesh (``ft.mesh``);
    each host feeds its own rows of every batch, drawn from its own share of the training windows.
    """
    from eegpt.foundation import resolve

    workdir, ete_dir = Path(workdir), resolve(ete_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    host, hosts = jax.process_index(), jax.process_count()
    mesh = sharding.make_mesh(ft.mesh[0] or None, ft.mesh[1])
    stores = _checked_stores(stores, ft, mesh, hosts)
    names = [s.name for s in stores]
    all_train = [s.indices("train") for s in stores]
    train_pos = [p[host::hosts] for p in all_train]  # this host's share
    val_sets = [s for s in stores if len(s.indices("val"))]
    ete_graphdef, ete_params, ete_cfg = load_ete(ete_dir)
    _check_ete(ete_cfg, stores, ft, hosts)
    tcfg = teg_config(ete_cfg, stores, ft)
    teg_graphdef, teg_params = nnx.split(TEG(tcfg, rngs=nnx.Rngs(ft.seed)))
    mcfg = EEGPTConfig(ete_cfg.ete_config(), tcfg, tuple(HeadSpec.of_store(s) for s in stores),
                       ete_cfg.token_stride, ft.k_neighbours, _provenance(ete_dir, ete_cfg, stores, all_train),
                       ft.nodes)
    model, tx = EEGPT(mcfg, None, ft.batch_size), _optimizer(ft)
    weights = np.asarray([len(p) for p in all_train], float) ** (1.0 / ft.temperature)
    weights /= weights.sum()
    cache, norm, data_it = _encoded(model, ete_params, ete_cfg, stores, all_train, ft, weights, features_out)

    next_batch = _batch_source(stores, train_pos, weights, cache, data_it, ft, host, hosts)
    ckpt, best_ckpt = Checkpoints(workdir / "checkpoints", max_to_keep=1), Checkpoints(workdir / "best", max_to_keep=1)
    teg_pure, lr_chosen = _linear_start(model, nnx.to_pure_dict(teg_params), stores, cache, norm, all_train, ft,
                                        workdir, bool(ckpt.latest_step()))
    params = {"ete": ete_params, "teg": teg_pure, "norm": norm}
    state = {"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32)}
    state_sh = sharding.state_shardings(state, mesh)
    state = jax.device_put(state, state_sh)
    step = _train_step(ete_graphdef, model, tx, jnp.asarray(_class_weights(stores, all_train, ft.class_balanced)),
                       state_sh)
    state, run_meta, resumed_from = _resumed(ckpt, state, state_sh, data_it, ete_dir, names, workdir)
    tracker = make_tracker(workdir / "tb", enabled=track)
    summary_base = {"ete_dir": str(Path(ete_dir).resolve()), "ete_config": dataclasses.asdict(ete_cfg),
                    "finetune": dataclasses.asdict(ft), "teg": dataclasses.asdict(tcfg),
                    "datasets": [{"name": s.name, "task": s.task, "classes": s.classes, "store": str(s.path)}
                                 for s in stores],
                    "sampling_weights": dict(zip(names, weights.round(4).tolist())), "readout_start": lr_chosen}
    t0 = time.perf_counter()
    boundary = Selection(model, val_sets, cache, ft, run_meta, tracker, ckpt, best_ckpt, data_it,
                          {"ete_dir": summary_base["ete_dir"], "datasets": names})
    loop = boundary.loop = trainer.Trainer(step, steps=ft.steps, every=ft.eval_every, on_boundary=boundary,
                                           desc="finetune", progress=progress, what="finetune", advice="lower --lr")
    loop.stop = run_meta["stopped_early"]
    try:
        if ft.readout_init == "lr" and not resumed_from:  # the linear start is a candidate too
            state = boundary(0, state, {})
        loop.run(state, lambda it: sharding.put_graph_batch(next_batch(it), mesh, hosts), resumed_from)
    except BaseException:
        best_ckpt.close()
        raise
    finally:
        tracker.close()
        ckpt.close()
    try:  # the kept parameters become the model directory
        best, _ = best_ckpt.restore_state(None, {"params": abstract_params_of(mcfg)[2]})
    finally:
        best_ckpt.close()
    kept, temperatures, answer_above = calibrated(EEGPT(mcfg, best["params"]), stores, val_sets, cache, ft)
    save(kept, workdir / "model")
    history = run_meta["history"]
    summary = {**summary_base, "best_step": run_meta["best_step"],
               "best_val_mean": run_meta["best"] if val_sets else None,
               "selected_on": "val" if val_sets else "linear start (no validation windows)"
               if ft.readout_init == "lr" else "last step (no validation windows)",
               "steps_run": history[-1]["step"] if history else 0, "stopped_early": run_meta["stopped_early"],
               "resumed_from": resumed_from, "seconds": round(time.perf_counter() - t0, 1),
               "temperature": temperatures or "1 (no validation windows to fit it on)",
               "answer_above": answer_above or "0 (no validation windows to choose it on)", "history": history,
               "model": str((workdir / "model").resolve())}
    atomic_write(workdir / "finetune.json", lambda t: t.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary
