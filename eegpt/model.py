"""The composed model: ETE -> per-electrode feature standardisation -> TEG -> one head per dataset.

``EEGPTConfig`` holds everything a trained model needs to answer about a new recording, resolved
(no preset names or training configs to look up): the ETE's and the graph's configs, how windows
become tokens, the electrode graph's neighbours, and per head its dataset, task, class names, the
preprocessing recipe, the window and stride and the montages it was trained on; plus provenance
(which data and which command trained it). ``save(model, dir)`` / ``load(dir)`` are the one
model-directory format, whatever produced it (``finetune``, ``demo``, ``benchmark``): a
``config.json`` and an Orbax checkpoint of the parameters, with no path to anything outside the
directory, so a model directory can be moved, copied or sent to another machine.

This module imports no training code.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from flax import nnx

from eegpt.electrodes import positions
from eegpt.errors import EEGInputError, atomic_dir
from eegpt.familiar import nearest_distance, window_profile
from eegpt.features import (SPECTRAL, band_log_power, laplacian, node_views, node_width, relative,
                            token_erp_bins)
from eegpt.int8 import INT8_FILE, read_int8
from eegpt.pipeline import Tokens, graph_batches
from eegpt.preprocess import Preprocess
from ete import ETE, ETEConfig
from ete import features as ete_features
from teg import TEG, TEGConfig, electrode_edges
from teg.model import VOCAB_SIZE as VOCAB

FORMAT = "eegpt-model/2"  # 2: band powers by Welch's method (1: untapered periodograms, not read)


@dataclass(frozen=True)
class HeadSpec:
    """What one head answers, and how a recording must be prepared for it."""

    name: str                       # the dataset (card) it was trained on
    task: str                       # ER, MI, MW, SS or CM
    classes: tuple[str, ...]
    recipe: Preprocess
    window_samples: int             # at the recipe's rate
    stride_samples: int
    montages: tuple[tuple[str, ...], ...] = ()  # the electrode sets seen in training
    # Temperature scaling (Guo et al. 2017): logits / temperature, fitted on the validation windows
    # after selection (1.0: not calibrated, as a model without validation windows stays)
    temperature: float = 1.0
    # The copilot gives a reading only at or above this (calibrated) confidence and otherwise says the
    # reading is uncertain: the level at which the validation windows answered were 90 % accurate
    # (metrics.answer_threshold). 0.0: always answer, as a model without validation windows does.
    answer_above: float = 0.0

    @property
    def sfreq(self) -> float:
        return float(self.recipe.sfreq)

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sfreq

    @property
    def electrodes(self) -> tuple[str, ...]:
        """Every electrode seen in training, over its montages (what ``place="montage"`` reads onto)."""
        return tuple(sorted({e for m in self.montages for e in m}))

    @classmethod
    def of_store(cls, store) -> "HeadSpec":
        return cls(store.name, store.task, tuple(store.classes), Preprocess(**store.index["preprocess"]),
                   store.window_samples, store.stride_samples, tuple(tuple(m) for m in store.montages))


@dataclass(frozen=True)
class EEGPTConfig:
    """A trained model's resolved configuration (see the module docstring).

    ``provenance``: ``datasets`` (per head: card, task, subjects and windows trained on, whether
    the data were synthetic), ``encoder`` (the pretraining's data), ``command`` and ``created``.
    """

    ete: ETEConfig
    teg: TEGConfig
    heads: tuple[HeadSpec, ...]
    token_stride: int | None = None
    k_neighbours: int | None = None
    provenance: dict = field(default_factory=dict, compare=False)
    nodes: str = "ete"  # what the graph reads per electrode: views of NODES joined by "+" (see encode)

    @property
    def node_width(self) -> int:
        """Width of the per-electrode features the graph reads."""
        return node_width(self.nodes, self.ete.d_model)

    @property
    def band_sfreq(self) -> float | None:
        """The rate band powers are computed at (the heads' recipe rate), or None without them."""
        return self.heads[0].sfreq if SPECTRAL & set(self.nodes.split("+")) else None

    @property
    def contiguous(self) -> bool:
        """Whether a window's tokens follow one another without overlap (Welch's half-overlapping
        segments can then be cut across neighbours)."""
        return self.token_stride in (None, self.ete.token_len)

    @property
    def tokens(self) -> Tokens:
        return Tokens(self.ete.token_len, self.token_stride)

    @property
    def layout(self) -> str:
        """Electrode mode feeds only real electrodes to the ETE; multichannel mode needs padding."""
        return "flat" if self.ete.mode == "electrode" else "padded"

    def head(self, name: str) -> HeadSpec:
        for h in self.heads:
            if h.name == name:
                return h
        raise EEGInputError(f"this model has no head {name!r}; it has {', '.join(h.name for h in self.heads)}")

    @property
    def synthetic(self) -> bool:
        """True when every head was trained on the embedded synthetic corpus only."""
        return all(d.get("synthetic") for d in self.provenance.get("datasets", [{}]))

    def trained_on(self) -> str:
        """One sentence a clinician reads: which data trained this model."""
        ds = self.provenance.get("datasets", [])
        if not ds:
            return "This model's training data are not recorded."
        parts = [f"{d['card']} ({d['subjects']} subjects)" if d.get("subjects") else d["card"] for d in ds]
        if self.synthetic:
            return ("This model was trained on synthetic EEG only (" + ", ".join(parts) + "), not on patients' "
                    "recordings: its reading of a real recording is a demonstration, not a clinical finding.")
        return "This model was trained on " + ", ".join(parts) + "."

    def to_json(self) -> dict:
        heads = [dict(dataclasses.asdict(h), recipe=h.recipe.to_dict()) for h in self.heads]
        return {"format": FORMAT, "ete": dataclasses.asdict(self.ete), "teg": dataclasses.asdict(self.teg),
                "heads": heads, "token_stride": self.token_stride, "k_neighbours": self.k_neighbours,
                "nodes": self.nodes, "provenance": self.provenance}

    @classmethod
    def from_json(cls, raw: dict) -> "EEGPTConfig":
        teg = dict(raw["teg"], heads_classes=tuple(tuple(h) for h in raw["teg"]["heads_classes"]))
        heads = tuple(HeadSpec(**dict(h, classes=tuple(h["classes"]), recipe=Preprocess(**h["recipe"]),
                                      montages=tuple(tuple(m) for m in h["montages"]))) for h in raw["heads"])
        return cls(ETEConfig(**raw["ete"]), TEGConfig(**teg), heads, raw["token_stride"], raw["k_neighbours"],
                   raw.get("provenance", {}), raw.get("nodes", "ete"))


# ----------------------------------------------------------------------------- the forward pass

def graph_inputs(batch: dict, k: int | None) -> dict:
    """A graph batch plus its edges (all pairs of a sample's electrodes, or k nearest)."""
    senders, receivers = electrode_edges(batch["electrodes_BxE"], batch["mask_BxE"], positions(), k, bucket=True)
    return dict(batch, senders=senders, receivers=receivers)


def encode(ete_graphdef, ete_params, batch, band_sfreq: float | None = None, nodes: str = "ete",
           contiguous: bool = True):
    """Per-electrode features ``[B, E, F]`` of a graph batch (zeros at padded electrodes), the
    ``nodes`` views side by side: "ete" the ETE's summary feature, "bands" the electrode's five log
    band powers (at ``band_sfreq``, Welch over ``contiguous`` tokens), "rel" their ``relative``
    shares, "erp" its first second's time course in 16 bins, "lap" / "laprel" the same two spectral
    views of its surface Laplacian (``laplacian``). Without "ete" the encoder is not run.

    Electrode mode reads the flat layout (only real electrodes go through the ETE and are
    scattered back to ``[B, E]``); multichannel mode the padded one."""
    ete = nnx.merge(ete_graphdef, ete_params)
    electrodes, mask = batch["electrodes_BxE"], batch["mask_BxE"]
    views = node_views(nodes)
    b, e = mask.shape
    power = lambda tok, n: band_log_power(tok, n, band_sfreq, contiguous)  # noqa: E731
    if ete.cfg.mode != "electrode":
        x = batch["tokens_BxExNxP"]
        flat = x.reshape(-1, *x.shape[2:])
        n_rows = jnp.broadcast_to(batch["n_tokens_B"][:, None], mask.shape).reshape(-1)
        rows = {}
        if "ete" in views:
            rows["ete"] = ete_features(ete, x, electrodes, mask)[0].reshape(b * e, -1)
        if {"bands", "rel"} & set(views):
            rows["bands"] = power(flat, n_rows)
        if "erp" in views:
            rows["erp"] = token_erp_bins(flat)
        if {"lap", "laprel"} & set(views):
            rows["lap"] = power(laplacian(x, electrodes, mask).reshape(flat.shape), n_rows)
    else:
        tok, put = batch["tokens_KxNxP"], batch["put_K"]
        rows = {}
        if "ete" in views:
            rows["ete"] = ete.summary_feature(tok, batch["electrode_K"], batch["n_tokens_K"])
        if {"bands", "rel"} & set(views):
            rows["bands"] = power(tok, batch["n_tokens_K"])
        if "erp" in views:
            rows["erp"] = token_erp_bins(tok)
        if {"lap", "laprel"} & set(views):  # the Laplacian needs each sample's electrodes side by side
            padded = jnp.zeros((b * e + 1, *tok.shape[1:]), tok.dtype).at[put].set(tok)
            lap = laplacian(padded[: b * e].reshape(b, e, *tok.shape[1:]), electrodes, mask)
            n_valid = jnp.zeros(b * e + 1, jnp.int32).at[put].set(batch["n_tokens_K"])[: b * e]
            lap_rows = power(lap.reshape(b * e, *tok.shape[1:]), n_valid)
            rows["lap"] = jnp.concatenate([lap_rows, jnp.zeros((1, lap_rows.shape[-1]))])[put]
    if "rel" in views:
        rows["rel"] = relative(rows["bands"])
    if "laprel" in views:
        rows["laprel"] = relative(rows["lap"])
    cat = jnp.concatenate([rows[v] for v in views], -1)
    if ete.cfg.mode != "electrode":
        return jnp.where(mask[..., None], cat.reshape(b, e, -1), 0.0)
    flat_out = jnp.zeros((b * e + 1, cat.shape[-1]), jnp.float32).at[batch["put_K"]].set(cat)
    return flat_out[: b * e].reshape(b, e, -1)


def forward(ete_graphdef, teg_graphdef, params, batch, band_sfreq: float | None = None, nodes: str = "ete",
            contiguous: bool = True):
    """(pooled [B, D], standardised per-electrode features [B, E, F], logits {head: [B, classes]}).

    A batch with ``features_BxExF`` (a frozen ETE's features, computed once) skips the encoder."""
    electrodes, mask = batch["electrodes_BxE"], batch["mask_BxE"]
    feats = (batch["features_BxExF"] if "features_BxExF" in batch
             else encode(ete_graphdef, params["ete"], batch, band_sfreq, nodes, contiguous))
    norm = params["norm"]
    feats = jnp.where(mask[..., None], (feats - norm["mean"][electrodes]) / norm["std"][electrodes], 0.0)
    pooled, logits = nnx.merge(teg_graphdef, params["teg"])(
        feats, electrodes, mask, batch["senders"], batch["receivers"])
    return pooled, feats, logits


def abstract_module(make) -> tuple:
    """(graphdef, parameter shapes as a plain dict) of the module ``make()`` builds, from shapes
    alone (``nnx.eval_shape``: nothing is allocated before a checkpoint is read into them)."""
    graphdef, state = nnx.split(nnx.eval_shape(make))
    return graphdef, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), nnx.to_pure_dict(state))


def abstract_params(cfg: EEGPTConfig) -> tuple:
    """(ETE graphdef, TEG graphdef, parameter shapes {"ete", "teg", "norm"})."""
    ete_graphdef, ete_abstract = abstract_module(lambda: ETE(cfg.ete, rngs=nnx.Rngs(0)))
    teg_graphdef, teg_abstract = abstract_module(lambda: TEG(cfg.teg, rngs=nnx.Rngs(0)))
    norm = {k: jax.ShapeDtypeStruct((VOCAB, cfg.node_width), jnp.float32) for k in ("mean", "std")}
    return ete_graphdef, teg_graphdef, {"ete": ete_abstract, "teg": teg_abstract, "norm": norm}


class EEGPT:
    """A trained (or training) ETE + TEG with its heads: structure, parameters and scoring.

    ``params`` is ``{"ete", "teg", "norm"}`` as plain pytrees (``norm``: per-electrode mean and
    std of the ETE's features over the training windows)."""

    def __init__(self, cfg: EEGPTConfig, params=None, batch_size: int = 32, familiar: dict | None = None):
        self.cfg, self.params, self.batch_size = cfg, params, batch_size
        # {head: (reference window profiles [N, F], distance threshold)}: what "like the training
        # data" means for the out-of-distribution check (see ``familiar_reference``)
        self.familiar = familiar or {}
        self.ete_graphdef, self.teg_graphdef, _ = abstract_params(cfg)
        self.heads = [h.name for h in cfg.heads]
        self._head_scorers = {}
        self._forward = jax.jit(lambda p, b: forward(self.ete_graphdef, self.teg_graphdef, p, b, cfg.band_sfreq,
                                                     cfg.nodes, cfg.contiguous))
        self.encode = jax.jit(lambda ete_params, b: encode(self.ete_graphdef, ete_params, b, cfg.band_sfreq,
                                                           cfg.nodes, cfg.contiguous))

    def __repr__(self) -> str:
        heads = ", ".join(f"{h.name} ({h.task}, {len(h.classes)} classes)" for h in self.cfg.heads)
        return f"EEGPT(d_model={self.cfg.ete.d_model}, ete_layers={self.cfg.ete.layers}, " \
               f"graph_layers={self.cfg.teg.layers}, heads=[{heads}])"

    def head_of(self, store) -> str:
        if store.name not in self.heads:
            raise EEGInputError(f"{store.path}: no head for dataset {store.name!r}; this model has "
                                f"{', '.join(self.heads)}")
        return store.name

    def batches(self, store, split: str | None, cached: dict | None = None):
        """Fixed-size batches of one store's split in store order (the last one filled), each
        with its number of real samples; from ``cached`` features when given."""
        if cached is None:
            for raw in graph_batches([store], split, self.batch_size, tokens=self.cfg.tokens,
                                     epochs=1, drop_remainder=False, shuffle=False,
                                     layout=self.cfg.layout, shard_index=0, shard_count=1):
                yield graph_inputs(raw, self.cfg.k_neighbours), int(raw["real_B"].sum())
            return
        pos = store.indices(split)
        for start in range(0, len(pos), self.batch_size):
            chunk = pos[start:start + self.batch_size]
            n = len(chunk)
            chunk = np.concatenate([chunk, np.full(self.batch_size - n, chunk[0])])
            yield graph_inputs(cached_batch(cached, store, chunk), self.cfg.k_neighbours), n

    def cache(self, store, ete_params=None) -> dict:
        """The (frozen) ETE's features of every window of a store, computed once, in store order."""
        ete_params = self.params["ete"] if ete_params is None else ete_params
        feats, ids, mask = [], [], []
        for batch, n in self.batches(store, None):
            feats.append(np.asarray(self.encode(ete_params, batch))[:n])
            ids.append(batch["electrodes_BxE"][:n])
            mask.append(batch["mask_BxE"][:n])
        return {"features": np.concatenate(feats), "electrodes": np.concatenate(ids), "mask": np.concatenate(mask)}

    def run(self, store, split: str | None = "test", params=None, cached: dict | None = None) -> dict:
        """A store's windows of ``split`` (all with None), in store order: class probabilities,
        labels, subjects, positions, pooled graph embeddings and per-electrode features."""
        head = self.head_of(store)
        pos = store.indices(split)
        if len(pos) == 0:
            raise EEGInputError(f"{store.path}: no windows in split {split!r}")
        out = self.score(self.batches(store, split, cached), head, params)
        return {**out, "labels": store.labels[pos], "subjects": store.subject_of[pos], "positions": pos}

    def score(self, batches, head: str, params=None) -> dict:
        """``head``'s class probabilities (temperature-scaled) and logits, pooled graph embeddings,
        standardised per-electrode features, electrode ids and masks of ``(graph batch, real
        samples)`` pairs, concatenated."""
        params = self.params if params is None else params
        temperature = self.cfg.head(head).temperature
        probs, logit, pooled, feats, mask, ids = [], [], [], [], [], []
        for batch, n in batches:
            p, f, logits = self._forward(params, batch)
            logit.append(np.asarray(logits[head], np.float32)[:n])
            probs.append(scipy.special.softmax(logit[-1] / temperature, -1))  # numpy: no device dispatch
            pooled.append(np.asarray(p)[:n])
            feats.append(np.asarray(f)[:n])
            mask.append(np.asarray(batch["mask_BxE"])[:n])
            ids.append(np.asarray(batch["electrodes_BxE"])[:n])
        width = max(m.shape[1] for m in mask)  # batches may pad to different electrode counts
        pad = lambda xs: np.concatenate([np.pad(x, [(0, 0), (0, width - x.shape[1])] + [(0, 0)] * (x.ndim - 2))  # noqa: E731
                                         for x in xs])
        return {"probs": np.concatenate(probs), "logits": np.concatenate(logit), "pooled": np.concatenate(pooled),
                "features": pad(feats), "mask": pad(mask), "electrodes": pad(ids)}

    def head_scorer(self, head: str):
        """A compiled ``batch -> (probabilities [B, C], window profiles [B, F])`` of one head alone:
        what a live stream reads each second (the other heads and outputs are never computed)."""
        if head not in self._head_scorers:
            temperature = self.cfg.head(head).temperature

            def one_head(params, batch):
                _, feats, logits = forward(self.ete_graphdef, self.teg_graphdef, params, batch, self.cfg.band_sfreq,
                                           self.cfg.nodes, self.cfg.contiguous)
                mask = batch["mask_BxE"][..., None].astype(feats.dtype)
                profile = (feats * mask).sum(1) / jnp.maximum(mask.sum(1), 1.0)  # window_profile, on device
                return jax.nn.softmax(logits[head] / temperature, -1), profile

            self._head_scorers[head] = jax.jit(one_head)
        return lambda batch: self._head_scorers[head](self.params, batch)

    def unfamiliar_profiles(self, head: str, profiles) -> np.ndarray | None:
        """Per window (``window_profile`` rows): lies farther from every reference training window
        than 99 % of held-out windows did (None: the model has no reference)."""
        if head not in self.familiar:
            return None
        ref, threshold = self.familiar[head]
        return nearest_distance(profiles, ref) > threshold

    def calibrated(self, temperatures: dict[str, float], answer_above: dict[str, float] | None = None) -> "EEGPT":
        """The same model with these heads' temperatures (and answering thresholds) set."""
        answer_above = answer_above or {}
        heads = tuple(dataclasses.replace(h, temperature=float(temperatures.get(h.name, h.temperature)),
                                          answer_above=float(answer_above.get(h.name, h.answer_above)))
                      for h in self.cfg.heads)
        return EEGPT(dataclasses.replace(self.cfg, heads=heads), self.params, self.batch_size, self.familiar)

    def unfamiliar(self, head: str, scored: dict) -> float | None:
        """The share of ``scored`` windows (``score``'s output) lying farther from every reference
        training window than 99 % of held-out windows did (None: the model has no reference)."""
        far = self.unfamiliar_profiles(head, window_profile(scored))
        return None if far is None else float(far.mean())

    def evaluate(self, store, split: str = "test", params=None, cached: dict | None = None) -> dict:
        from eegpt.metrics import classification

        out = self.run(store, split, params, cached)
        return classification(out["labels"], out["probs"], len(store.classes))


def cached_batch(cached: dict, store, positions, dataset: int = 0) -> dict:
    """A graph batch of cached features at store ``positions``."""
    positions = np.asarray(positions)
    return {"features_BxExF": cached["features"][positions], "electrodes_BxE": cached["electrodes"][positions],
            "mask_BxE": cached["mask"][positions], "label_B": store.labels[positions].astype(np.int32),
            "dataset_B": np.full(len(positions), dataset, np.int32)}


# ----------------------------------------------------------------------------- the model directory

def model_dir(path) -> Path:
    """The model directory at ``path``: the directory itself, or the ``model/`` inside a
    ``finetune`` or ``demo`` workdir."""
    path = Path(path)
    for d in (path, path / "model", path / "finetune" / "model"):
        if (d / "config.json").exists() and ((d / "params").is_dir() or (d / INT8_FILE).exists()):
            return d
    if not path.exists():
        raise EEGInputError(f"{path}: no such model directory; train one with eegpt finetune or eegpt demo")
    raise EEGInputError(f"{path}: not a model directory (no config.json and params/ here or in {path}/model); "
                        "train one with eegpt finetune or eegpt demo")


def save(model: EEGPT, path) -> Path:
    """Write ``model`` to the directory ``path`` (config.json + params/), replacing what is there
    in one rename: a reader sees the old model or the new one, never half of one."""
    import orbax.checkpoint as ocp

    path = Path(path).resolve()
    with atomic_dir(path) as tmp:
        (tmp / "config.json").write_text(json.dumps(model.cfg.to_json(), indent=2) + "\n")
        with ocp.StandardCheckpointer() as ckpt:
            ckpt.save(tmp / "params", jax.tree.map(np.asarray, model.params))
        if model.familiar:
            np.savez(tmp / "familiar.npz", **{f"{h}/reference": r for h, (r, _) in model.familiar.items()},
                     **{f"{h}/threshold": np.float32(t) for h, (_, t) in model.familiar.items()})
    return path


def load(path, batch_size: int = 32) -> EEGPT:
    """The model in a model directory (or in a ``finetune`` / ``demo`` workdir's ``model/``).

    Raises
    ------
    EEGInputError
        When ``path`` holds no model, or a damaged one (one line naming it).
    """
    import orbax.checkpoint as ocp

    path = model_dir(path)
    try:
        raw = json.loads((path / "config.json").read_text())
        if raw.get("format") != FORMAT:
            raise KeyError(f"format {raw.get('format')!r}, not {FORMAT!r}")
        cfg = EEGPTConfig.from_json(raw)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise EEGInputError(f"{path}/config.json: not an EEGPT model configuration ({err}); "
                            "train the model again") from None
    _, _, abstract = abstract_params(cfg)
    try:
        if (path / INT8_FILE).exists():  # eegpt quantize's int8 weights
            params = read_int8(path / INT8_FILE, abstract)
        else:
            with ocp.StandardCheckpointer() as ckpt:
                params = ckpt.restore((path / "params").resolve(), abstract)
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise EEGInputError(f"{path}/params: damaged or does not match config.json "
                            f"({str(err).splitlines()[0][:120]}); copy the model again or retrain it") from None
    familiar = {}
    if (path / "familiar.npz").exists():
        with np.load(path / "familiar.npz") as z:
            familiar = {h.name: (z[f"{h.name}/reference"], float(z[f"{h.name}/threshold"])) for h in cfg.heads
                        if f"{h.name}/reference" in z}
    return EEGPT(cfg, jax.tree.map(jnp.asarray, params), batch_size, familiar)
