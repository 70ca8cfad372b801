"""Input pipelines (grain): from prepared stores to the batches the models eat.

Two kinds of batch, both numpy dicts:

pretraining  the ETE treats every electrode on its own, so a batch is a flat list of electrode
             sequences, with no electrode padding at all:
             ``tokens_BxNxP`` float32, ``electrode_B`` int32 (vocabulary id), ``dataset_B`` int32
graph        whole samples for the electrode graph, padded to ``max_electrodes`` with a mask, and
             to the longest token count of the mixed stores:
             ``tokens_BxExNxP``, ``electrodes_BxE``, ``mask_BxE`` (bool), ``n_tokens_B``,
             ``task_B``, ``dataset_B``, ``label_B``, ``real_B`` (False: a repeated sample that
             fills the last batch of an evaluation pass to full size)
             ``layout="flat"`` replaces ``tokens_BxExNxP`` by the real electrodes alone, as the
             per-electrode ETE wants them: ``tokens_KxNxP``, ``electrode_K``, ``n_tokens_K`` and
             ``put_K`` (row of each in the flattened ``[B * E]`` grid; padding rows point at
             ``B * E``), K rounded up to a multiple of 64 so jit sees few shapes. Mixed montages
             then cost no electrode padding at all.

Both shuffle deterministically by seed, take this host's share (``jax.process_index()`` of
``jax.process_count()``) before shuffling, mix several stores by weight, repeat for as many
epochs as asked, and return a grain ``IterDataset`` whose iterator has ``get_state``/``set_state``
for checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import grain
import grain.experimental as gx
import numpy as np

from eegpt import TASKS  # task ids in batches: ``task_B`` indexes this tuple
from eegpt.electrodes import ID
from eegpt.store import Store, open_stores


@dataclass(frozen=True)
class Tokens:
    """How a window becomes tokens: ``token_len`` samples every ``stride`` samples (EEGPT: 1-s
    tokens at 256 Hz; a stride below ``token_len`` gives EEGPT's overlapping tokens)."""

    token_len: int = 256
    stride: int | None = None

    def count(self, n_samples: int) -> int:
        step = self.stride or self.token_len
        return 0 if n_samples < self.token_len else 1 + (n_samples - self.token_len) // step


def tokenize(x_ExS: np.ndarray, tokens: Tokens = Tokens()) -> np.ndarray:
    """[E, S] -> [E, N, P] tokens (a strided view copied into a contiguous array)."""
    step = tokens.stride or tokens.token_len
    view = np.lib.stride_tricks.sliding_window_view(x_ExS, tokens.token_len, axis=-1)[:, ::step]
    return np.ascontiguousarray(view[:, : tokens.count(x_ExS.shape[-1])])


class StoreSource(grain.sources.RandomAccessDataSource):
    """The windows of one split of a store, as grain's random-access source.

    ``fraction`` < 1 keeps that share of the windows, the same ones for every seed (a fixed
    permutation), for data-scaling experiments.
    """

    def __init__(self, store: Store, split: str | None = None, subjects=None, fraction: float = 1.0):
        self.store = store
        self.positions = store.indices(split, subjects)
        if fraction < 1.0:
            keep = max(1, int(round(len(self.positions) * fraction)))
            self.positions = np.sort(np.random.default_rng(0).permutation(self.positions)[:keep])

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int):
        return self.store[self.positions[i]]

    def __repr__(self) -> str:
        return f"StoreSource({self.store.path}, n={len(self)})"


def _host_share(shard_index, shard_count):
    if shard_index is None or shard_count is None:
        import jax

        return jax.process_index(), jax.process_count()
    return shard_index, shard_count


def _samples(store: Store, split, seed: int, epochs, host, fraction: float = 1.0,
             shuffle: bool = True) -> grain.MapDataset:
    ds = grain.MapDataset.source(StoreSource(store, split, fraction=fraction))
    if len(ds) == 0:
        raise ValueError(f"{store.path}: no windows in split {split!r}")
    ds = ds[host[0]::host[1]]  # each host its own disjoint share, before shuffling
    return (ds.shuffle(seed=seed) if shuffle else ds).repeat(epochs)


def _mix(parts: list[grain.IterDataset], weights) -> grain.IterDataset:
    if len(parts) == 1:
        return parts[0]
    return grain.IterDataset.mix(parts, list(weights) if weights is not None else None)


def _bucket(n: int, step: int = 64) -> int:
    return step * max(1, -(-n // step))


def collate_graph(examples: list[dict], e_max: int, n_max: int, token_len: int, layout: str = "padded",
                  batch_size: int | None = None, bucket: int = 64) -> dict:
    """Unpadded examples (``tokens`` [e, n, P], ``ids`` [e], labels) -> one graph batch.

    With ``batch_size`` a short batch is filled to that size by repeating its first example
    (``real_B`` marks the fill), so evaluation passes keep one compiled shape. The flat layout's
    rows are padded to a multiple of ``bucket`` (few shapes to compile; a stream of one montage
    passes its electrode count and pads nothing)."""
    real = np.ones(len(examples), bool)
    if batch_size is not None and len(examples) < batch_size:
        real = np.concatenate([real, np.zeros(batch_size - len(examples), bool)])
        examples = list(examples) + [examples[0]] * (batch_size - len(examples))
    b = len(examples)
    counts = np.asarray([len(x["ids"]) for x in examples])
    electrodes = np.zeros((b, e_max), np.int32)
    mask = np.arange(e_max)[None] < counts[:, None]
    for i, x in enumerate(examples):
        electrodes[i, : counts[i]] = x["ids"]
    out = {"electrodes_BxE": electrodes, "mask_BxE": mask,
           "n_tokens_B": np.asarray([x["tokens"].shape[1] for x in examples], np.int32), "real_B": real,
           **{k: np.asarray([x[k] for x in examples], np.int32) for k in ("task_B", "dataset_B", "label_B")}}
    if layout == "padded":
        t = np.zeros((b, e_max, n_max, token_len), np.float32)
        for i, x in enumerate(examples):
            t[i, : counts[i], : x["tokens"].shape[1]] = x["tokens"]
        return {"tokens_BxExNxP": t, **out}
    k = _bucket(int(counts.sum()), bucket)
    t = np.zeros((k, n_max, token_len), np.float32)
    ids, n_tok = np.zeros(k, np.int32), np.zeros(k, np.int32)
    put = np.full(k, b * e_max, np.int32)
    row = 0
    for i, x in enumerate(examples):
        e, n = counts[i], x["tokens"].shape[1]
        t[row:row + e, :n] = x["tokens"]
        ids[row:row + e], n_tok[row:row + e] = x["ids"], n
        put[row:row + e] = i * e_max + np.arange(e)
        row += e
    return {"tokens_KxNxP": t, "electrode_K": ids, "n_tokens_K": n_tok, "put_K": put, **out}


def graph_batches(stores, split: str | None, batch_size: int, *, tokens: Tokens = Tokens(),
                  max_electrodes: int | None = None, weights=None, seed: int = 0,
                  epochs: int | None = None, drop_remainder: bool = True, shuffle: bool = True,
                  layout: str = "padded", mix: str = "sample", shard_index: int | None = None,
                  shard_count: int | None = None) -> grain.IterDataset:
    """Batches of whole samples for the electrode graph (see the module docstring).

    ``max_electrodes`` defaults to the largest montage of the stores; ``epochs=None`` repeats
    forever (training), ``epochs=1`` makes one pass (evaluation: ``drop_remainder=False`` fills
    the last batch, see ``real_B``; ``shuffle=False`` keeps windows in store order).
    ``mix="sample"`` mixes the stores within each batch (padded to the longest window);
    ``mix="batch"`` draws each batch from one store, so a batch is only as long as its own windows
    and as wide as its own montages (30-s sleep epochs hold 30 tokens on 2 electrodes, 4-s motor
    imagery windows 4 tokens on 64: mixed, every batch would pay for 30 x 64).
    """
    if layout not in ("padded", "flat") or mix not in ("sample", "batch"):
        raise ValueError(f"unknown layout {layout!r} or mix {mix!r}")
    stores = open_stores(stores)
    host = _host_share(shard_index, shard_count)
    e_max = max_electrodes or max(len(m) for s in stores for m in s.montages)
    n_max = max(tokens.count(s.window_samples) for s in stores)

    def to_example(k: int, store: Store):
        montage_ids = [np.asarray([ID[e] for e in m], np.int32) for m in store.montages]

        def fn(sample):
            if len(sample.electrodes) > e_max:
                raise ValueError(f"{store.path}: a sample has {len(sample.electrodes)} electrodes, more "
                                 f"than max_electrodes={e_max}")
            return {"tokens": tokenize(sample.x, tokens), "ids": montage_ids[store.montages.index(sample.electrodes)],
                    "task_B": TASKS.index(store.task), "dataset_B": k, "label_B": sample.label}
        return fn

    parts = [_samples(s, split, seed + 1000 * k, epochs, host, shuffle=shuffle).map(to_example(k, s)).to_iter_dataset()
             for k, s in enumerate(stores)]
    fill = None if drop_remainder else batch_size

    def batched(ds, n_tokens, electrodes):
        return ds.batch(batch_size, drop_remainder=drop_remainder, batch_fn=lambda xs: collate_graph(
            xs, electrodes, n_tokens, tokens.token_len, layout, fill))

    if mix == "batch":  # each batch from one store, the store drawn by weight, as wide as its montages
        return _mix([batched(p, tokens.count(s.window_samples), max(len(m) for m in s.montages))
                     for p, s in zip(parts, stores)], weights)
    return batched(_mix(parts, weights), n_max, e_max)


class _ElectrodeChunks(gx.FlatMapTransform):
    """One sample -> its electrodes' token sequences, cut into chunks of ``seq_tokens`` tokens."""

    def __init__(self, tokens: Tokens, seq_tokens: int, dataset: int, max_fan_out: int):
        self.tokens, self.seq_tokens, self.dataset = tokens, seq_tokens, dataset
        self.max_fan_out = max_fan_out

    def flat_map(self, sample):
        t = tokenize(sample.x, self.tokens)  # [E, N, P]
        n_chunks = t.shape[1] // self.seq_tokens
        out = []
        for e, name in enumerate(sample.electrodes):
            for c in range(n_chunks):
                out.append({"tokens_BxNxP": t[e, c * self.seq_tokens:(c + 1) * self.seq_tokens],
                            "electrode_B": np.int32(ID[name]), "dataset_B": np.int32(self.dataset)})
        return out


def pretrain_batches(stores, split: str | None, batch_size: int, seq_tokens: int, *,
                     tokens: Tokens = Tokens(), weights=None, seed: int = 0, epochs: int | None = None,
                     shuffle_window: int = 1024, drop_remainder: bool = True, fraction: float = 1.0,
                     shard_index: int | None = None, shard_count: int | None = None) -> grain.IterDataset:
    """Flat batches of single-electrode sequences of ``seq_tokens`` tokens for pretraining.

    Samples are shuffled, split into electrode chunks, and the chunks shuffled again within a
    window of ``shuffle_window`` so that a batch mixes electrodes of many samples and subjects.
    """
    stores = open_stores(stores)
    host = _host_share(shard_index, shard_count)
    parts = []
    for k, s in enumerate(stores):
        n_chunks = tokens.count(s.window_samples) // seq_tokens
        if n_chunks == 0:
            raise ValueError(f"{s.path}: windows of {s.window_samples} samples hold fewer than "
                             f"{seq_tokens} tokens of {tokens.token_len}")
        fan_out = n_chunks * max(len(m) for m in s.montages)
        ds = _samples(s, split, seed + 1000 * k, epochs, host, fraction).to_iter_dataset()
        parts.append(gx.FlatMapIterDataset(ds, _ElectrodeChunks(tokens, seq_tokens, k, fan_out)))
    mixed = _mix(parts, weights)
    if shuffle_window > 1:
        mixed = gx.WindowShuffleIterDataset(mixed, window_size=shuffle_window, seed=seed)
    return mixed.batch(batch_size, drop_remainder=drop_remainder)


def temperature_weights(stores, temperature: float = 1.0) -> list[float]:
    """Mixing weights proportional to ``n_windows ** (1 / temperature)`` (T=1: by size; large T:
    towards uniform), so small datasets are not drowned by large ones."""
    sizes = np.asarray([len(s) for s in open_stores(stores)], float)
    w = sizes ** (1.0 / temperature)
    return (w / w.sum()).tolist()


def training_batches(cfg, stores, split, *, epochs=None, batch_size=None, seed=None):
    """The batches a pretraining-style run (``eegpt.train.PretrainConfig``, the tokenizer's config)
    reads from ``split``, this host's share: electrode sequences, or whole windows (multichannel).
    Without ``epochs`` they repeat, shuffled, with full batches only (training); with it, in order
    (scoring). ``cfg`` gives ``mode``, ``batch_size``, ``seq_tokens``, ``tokens()``, ``seed`` and
    ``data_fraction``."""
    import jax

    per_host = (batch_size or cfg.batch_size) // jax.process_count()
    seed = cfg.seed if seed is None else seed
    if cfg.mode == "electrode":
        return pretrain_batches(stores, split, per_host, cfg.seq_tokens, tokens=cfg.tokens(), seed=seed,
                                epochs=epochs, drop_remainder=epochs is None,
                                fraction=cfg.data_fraction if split == "train" else 1.0,
                                shuffle_window=1024 if epochs is None else 1)
    return graph_batches(stores, split, per_host, tokens=cfg.tokens(), seed=seed, epochs=epochs,
                         drop_remainder=epochs is None)
