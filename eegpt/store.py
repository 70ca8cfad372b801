"""Prepared stores: a dataset, preprocessed and windowed by its card, as ArrayRecord shards.

Layout of a store directory::

    index.json                 card, recipe, classes, electrodes, subjects, splits, counts, shards
    shards/NNNNN-<stem>.arrayrecord   one shard per recording: its windows, float32 [E, S] each
    shards/NNNNN-<stem>.json   the shard's description, written after the shard: its presence
                               marks the shard complete

Every file is written to a temporary name and renamed, so an interrupted ``prepare`` leaves only
complete shards behind, and running it again finishes the rest without redoing them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing as mp
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegpt.cards import Card, load_card, split_of, subject_of, windows
from eegpt.electrodes import ID
from eegpt.preprocess import Preprocess, preprocess
from eegpt.mne_io import check_file
from eegpt.recording import read
from eegpt.errors import READER_ERRORS, EEGInputError, atomic_write, from_reader

FORMAT_VERSION = 1


def _fingerprint(card: Card, cfg: Preprocess, continuous: bool = False) -> str:
    """Changes whenever the card or the recipe would change a shard's contents."""
    what = {"v": FORMAT_VERSION, "read": card.read, "labels": card.labels,
            "window": card.window, "classes": card.classes, "cfg": cfg.to_dict()}
    if continuous:  # whole recordings, labelled or not: other shards (a labelled store keeps its fingerprint)
        what["continuous"] = True
    blob = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


BIDS_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif")


def find_files(card: Card, source: Path) -> tuple[list[Path], list[Path]]:
    """The recordings the card's pattern matches, and the folders it matches too (said, not read)."""
    if not source.is_dir():
        raise EEGInputError(f"{source}: no such dataset folder; pass the folder you downloaded "
                            f"{card.name} into")
    if card.files.get("layout") == "bids":  # OpenNeuro's layout: the task's EEG files, found by mne-bids
        from mne_bids import find_matching_paths

        if not (source / "dataset_description.json").exists():
            raise EEGInputError(f"{source}: not a BIDS dataset's root (no dataset_description.json) for card "
                                f"{card.name}; pass the folder that holds it and sub-*/")
        found = find_matching_paths(source, tasks=card.files.get("task"), datatypes="eeg", suffixes="eeg",
                                    extensions=list(BIDS_EXTENSIONS))
        files = sorted(Path(bp.fpath) for bp in found)
        if not files:
            raise EEGInputError(f"{source}: no BIDS EEG recordings of task {card.files.get('task')!r} for card "
                                f"{card.name}; is this the dataset's root (with participants.tsv and sub-*/)?")
        return files, []
    pattern = card.files.get("glob", "**/*")
    exclude = card.files.get("exclude")
    matched = sorted(p for p in source.glob(pattern) if not p.name.startswith(".")
                     and not (exclude and re.search(exclude, p.name)))
    files = [p for p in matched if p.is_file()]
    if not files:
        raise EEGInputError(f"{source}: no files matching {pattern!r} for card {card.name}; "
                            "is this the dataset's folder?")
    return files, [p for p in matched if p.is_dir() and card.files.get("glob")]


def _prepare_one(card_path: str, source: str, rel: str, shard_base: str, cfg: Preprocess,
                 continuous: bool = False) -> dict:
    """Read, preprocess and window one recording, and write its shard. Runs in a worker process."""
    from array_record.python.array_record_module import ArrayRecordWriter

    card = load_card(card_path)
    path = Path(source) / rel
    if card.files.get("layout") == "bids":  # channel types from channels.tsv, events from events.tsv
        from mne_bids import get_bids_path_from_fname, read_raw_bids

        bids_path = get_bids_path_from_fname(path)
        bids_path.root = Path(source)
        check_file(path)
        try:
            raw = read_raw_bids(bids_path, verbose="error")
        except READER_ERRORS as err:  # mne-bids and MNE raise many types for a damaged file or sidecar
            if not from_reader(err):
                raise
            raise EEGInputError(f"{path}: cannot be read as BIDS ({str(err).strip().splitlines()[0]}); check the "
                                "file and its sidecars (channels.tsv, events.tsv)") from None
        rec = read(raw, subject=bids_path.subject, rename=card.read.get("rename"))
        rec.source = str(path)
    else:
        rec = read(path, subject=subject_of(card, rel), sfreq=card.read.get("sfreq"),
                   ch_names=card.read.get("ch_names"), rename=card.read.get("rename"),
                   drop_bad=bool(card.read.get("drop_bad", False)), distributed=card.read.get("format"),
                   montage=card.read.get("montage"), place=card.read.get("place", "nearest"))
    rec = preprocess(rec, cfg)
    x, labels = windows(card, rec, path, continuous=continuous)
    shard = Path(shard_base + ".arrayrecord")

    def write_shard(tmp):
        writer = ArrayRecordWriter(str(tmp), "group_size:1")  # one record per group: random access
        try:
            for w in x:
                writer.write(np.ascontiguousarray(w, "<f4").tobytes())
        finally:
            writer.close()

    atomic_write(shard, write_shard)
    meta = {"file": rel, "subject": rec.subject, "shard": shard.name, "n": int(len(labels)),
            "labels": labels.tolist(), "electrodes": rec.electrodes, "set_aside": rec.set_aside,
            "duration_s": round(rec.duration, 3)}
    atomic_write(Path(shard_base + ".json"), lambda t: t.write_text(json.dumps(meta)))
    return meta


def prepare(card: Card | str, source, out, cfg: Preprocess = Preprocess(), workers: int = 2,
            skip_bad: bool = False, progress: bool = True, overwrite: bool = False,
            continuous: bool = False) -> "Store":
    """Prepare a dataset folder into a store (see the module docstring).

    Parameters
    ----------
    card : a :class:`Card` or a card name (``eegmat``) or path.
    source : the dataset folder as downloaded.
    out : the store directory (created; an earlier partial run in it is completed).
    cfg : preprocessing recipe.
    workers : processes (recordings are prepared in parallel).
    skip_bad : leave out recordings that cannot be read (listed in the index) instead of failing.
    overwrite : replace a store of another card or recipe at ``out`` (refused otherwise).
    continuous : every recording the card's files match, whole, tiled by its windows and unlabelled
        (label -1), whether or not the card labels it: the data of pretraining (``eegpt pretrain``
        reads no labels), not of fine-tuning, which refuses such a store.

    Raises
    ------
    EEGInputError
        For an unknown card, a card that cannot be prepared, a missing folder, no matching files,
        or (without ``skip_bad``) any recording that cannot be read; the message lists them all.
    """
    card = load_card(card) if isinstance(card, str) else card
    if not card.prepare:
        raise EEGInputError(f"card {card.name}: cannot be prepared yet: {card.why_not}")
    source, out = Path(source), Path(out)
    files, folders = find_files(card, source)
    shards_dir = out / "shards"
    fp = _fingerprint(card, cfg, continuous)
    _check_out(out, card, fp, overwrite)
    shards_dir.mkdir(parents=True, exist_ok=True)
    jobs, metas = _pending(files, source, shards_dir, fp)
    errors = _run_jobs(card, source, jobs, cfg, continuous, workers, progress, metas)
    if errors and not skip_bad:
        lines = "; ".join(errors.values())
        raise EEGInputError(f"{len(errors)} of {len(files)} recordings of {card.name} could not be "
                            f"prepared (rerun with --skip-bad to leave them out): {lines}")
    # Stale shards from an earlier recipe or file list are not part of this store.
    keep = {m["shard"] for m in metas.values()} | {Path(m["shard"]).stem + ".json" for m in metas.values()}
    for p in shards_dir.iterdir():
        if p.name not in keep:  # includes temporaries of a run that was killed
            p.unlink()
    ordered = [m for m in (metas[r] for r in sorted(metas)) if m["n"] > 0]
    if not ordered:
        raise EEGInputError(f"{source}: no {'' if continuous else 'labelled '}windows in any recording for card "
                            f"{card.name}")
    skipped = {**errors, **{str(f.relative_to(source)): f"a folder whose name matches {card.files['glob']!r}, "
                                                        "not a recording file; not read" for f in folders}}
    index = _index(card, cfg, fp, ordered, skipped, source, continuous)
    atomic_write(out / "index.json", lambda t: t.write_text(json.dumps(index, indent=1)))
    return Store(out)


def _pending(files, source: Path, shards_dir: Path, fp: str) -> tuple[list, dict]:
    """(jobs ``[(relative path, shard base)]`` still to prepare, ``{relative path: shard meta}`` of
    the recordings an earlier run of this recipe finished)."""
    jobs, metas = [], {}
    for i, f in enumerate(files):
        rel = str(f.relative_to(source))
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", rel.replace("/", "__"))
        base = str(shards_dir / f"{i:05d}-{fp[:8]}-{stem}")
        done = Path(base + ".json")
        if done.exists() and Path(base + ".arrayrecord").exists():
            metas[rel] = json.loads(done.read_text())
        else:
            jobs.append((rel, base))
    return jobs, metas


def _run_jobs(card: Card, source: Path, jobs, cfg: Preprocess, continuous: bool, workers: int, progress: bool,
              metas: dict) -> dict[str, str]:
    """Prepare each job's recording (in ``workers`` processes), adding its shard meta to ``metas``;
    returns ``{relative path: why}`` of the recordings that could not be read."""
    errors: dict[str, str] = {}
    bar = None
    if progress and jobs:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=f"prepare {card.name}", unit="file", leave=False)

    def record(rel, result):
        try:
            metas[rel] = result()
        except EEGInputError as err:
            errors[rel] = str(err)
        if bar:
            bar.update()

    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_prepare_one, card.path, str(source), rel, base, cfg, continuous): rel
                       for rel, base in jobs}
            for fut in as_completed(futures):
                record(futures[fut], fut.result)
    else:
        for rel, base in jobs:
            record(rel, lambda: _prepare_one(card.path, str(source), rel, base, cfg, continuous))
    if bar:
        bar.close()
    return errors


def _index(card: Card, cfg: Preprocess, fp: str, ordered: list[dict], skipped: dict, source: Path,
           continuous: bool) -> dict:
    """The store's ``index.json``: the recipe, the shards in order (each given its montage and split),
    the subjects and their splits, and the windows counted per split and class."""
    subjects = sorted({m["subject"] for m in ordered}, key=lambda s: (len(s), s))
    splits = split_of(card, subjects)
    montages: list[list[str]] = []
    for m in ordered:
        if m["electrodes"] not in montages:
            montages.append(m["electrodes"])
        m["montage"] = montages.index(m["electrodes"])
        m["split"] = splits[m["subject"]]
        del m["electrodes"]
    counts: dict[str, dict[str, int]] = {}
    for m in ordered:
        part = counts.setdefault(m["split"], {c: 0 for c in card.classes})
        for lab in m["labels"]:
            if lab < 0:  # a continuous store's windows
                part["unlabelled"] = part.get("unlabelled", 0) + 1
            else:
                part[card.classes[lab]] += 1
    return {
        "format": FORMAT_VERSION, "card": card.name, "task": card.task, "classes": list(card.classes),
        "fingerprint": fp, "preprocess": cfg.to_dict(), "sfreq": cfg.sfreq,
        "window_s": card.window_s, "window_samples": int(round(card.window_s * cfg.sfreq)),
        "stride_s": card.stride_s, "stride_samples": int(round(card.stride_s * cfg.sfreq)),
        "electrodes": sorted({e for mo in montages for e in mo}, key=ID.get),
        "montages": montages, "subjects": subjects, "splits": splits, "counts": counts,
        "n_samples": int(sum(m["n"] for m in ordered)), "shards": ordered,
        "skipped": skipped, "source": str(source.resolve()), "continuous": continuous,
    }


def _check_out(out: Path, card: Card, fp: str, overwrite: bool) -> None:
    """Refuse to replace what ``out`` holds (another card's or recipe's store, or any other
    folder with files) unless ``overwrite``; a partial store of this card and recipe is completed."""
    if overwrite or not out.exists():
        return
    index = out / "index.json"
    if index.exists():
        try:
            old = json.loads(index.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("fingerprint") != fp:
            what = f"a store of card {old.get('card', '?')}" + (
                " with another recipe" if old.get("card") == card.name else "")
            raise EEGInputError(f"{out}: holds {what}; pass --overwrite to replace it, or choose another --out")
        return
    shards = out / "shards"
    foreign = [p.name for p in out.iterdir() if p.name != "shards"]
    foreign += [p.name for p in shards.iterdir() if f"-{fp[:8]}-" not in p.name] if shards.is_dir() else []
    if foreign:
        raise EEGInputError(f"{out}: not empty ({', '.join(sorted(foreign)[:3])}...) and not a store of card "
                            f"{card.name}; pass --overwrite to replace it, or choose another --out")


@dataclass
class Sample:
    """One labelled window of a store."""

    x: np.ndarray          # float32 [E, S]
    electrodes: list[str]  # canonical names, one per row of x
    label: int
    subject: str
    split: str


class Store:
    """Read access to a prepared store: the index, and windows by global position."""

    def __init__(self, path):
        self.path = Path(path)
        index_path = self.path / "index.json"
        if not index_path.exists():
            raise EEGInputError(f"{self.path}: not a prepared store (no index.json); run eegpt prepare")
        self.index = json.loads(index_path.read_text())
        if self.index.get("format") != FORMAT_VERSION:
            raise EEGInputError(f"{self.path}: store format {self.index.get('format')} is not "
                                f"{FORMAT_VERSION}; prepare it again")
        shards = self.index["shards"]
        self.offsets = np.cumsum([0] + [s["n"] for s in shards])
        self.labels = np.concatenate([np.asarray(s["labels"], np.int32) for s in shards])
        shard_of = np.repeat(np.arange(len(shards)), [s["n"] for s in shards])
        self.shard_of = shard_of
        self.montage_of = np.asarray([shards[k]["montage"] for k in shard_of], np.int32)
        self.subject_of = np.asarray([shards[k]["subject"] for k in shard_of])
        self.split_of = np.asarray([shards[k]["split"] for k in shard_of])
        self.aligners = None  # {subject: [E, E]} applied to every window read (with_alignment)
        self._source = None

    # --- the index
    @property
    def name(self) -> str:
        return self.index["card"]

    @property
    def task(self) -> str:
        return self.index["task"]

    @property
    def classes(self) -> list[str]:
        return self.index["classes"]

    @property
    def montages(self) -> list[list[str]]:
        return self.index["montages"]

    @property
    def window_samples(self) -> int:
        return self.index["window_samples"]

    @property
    def stride_samples(self) -> int:
        """Samples between window starts (stores written before the stride was indexed: the card's)."""
        if "stride_samples" not in self.index:
            return int(round(load_card(self.name).stride_s * self.index["sfreq"]))
        return self.index["stride_samples"]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def indices(self, split: str | None = None, subjects=None) -> np.ndarray:
        """Global positions of the windows of a split and/or a set of subjects."""
        keep = np.ones(len(self), bool)
        if split is not None:
            keep &= self.split_of == split
        if subjects is not None:
            keep &= np.isin(self.subject_of, list(subjects))
        return np.flatnonzero(keep)

    @property
    def file_of(self) -> np.ndarray:
        """The source file (relative to the dataset folder) of every window."""
        return np.asarray([self.index["shards"][k]["file"] for k in self.shard_of])

    def with_splits(self, split_of) -> "Store":
        """The same store with another assignment of windows to train/val/test (a benchmark's own
        protocol: runs of one subject, or leave-one-subject-out folds). Nothing is rewritten."""
        split_of = np.asarray(split_of)
        if split_of.shape != self.split_of.shape:
            raise ValueError(f"{self.path}: {split_of.shape[0]} splits for {len(self)} windows")
        other = copy.copy(self)
        other.split_of = split_of
        other._source = None
        return other

    def with_alignment(self, aligners: dict) -> "Store":
        """The same store whose windows are read as ``aligners[subject] @ x`` (each subject's
        Euclidean alignment, :func:`eegpt.features.euclidean_alignment`). Nothing is rewritten."""
        other = copy.copy(self)
        other.aligners = aligners
        other._source = None
        return other

    # --- the records
    def source(self):
        """A grain ``ArrayRecordDataSource`` over the shards, in index order."""
        if self._source is None:
            import grain

            self._source = grain.sources.ArrayRecordDataSource(
                [str(self.path / "shards" / s["shard"]) for s in self.index["shards"]])
        return self._source

    def decode(self, i: int, record: bytes) -> Sample:
        electrodes = self.montages[self.montage_of[i]]
        x = np.frombuffer(record, "<f4").reshape(len(electrodes), self.window_samples)
        if self.aligners is not None:
            x = (self.aligners[str(self.subject_of[i])] @ x).astype(np.float32)
        return Sample(x, electrodes, int(self.labels[i]), str(self.subject_of[i]), str(self.split_of[i]))

    def __getitem__(self, i: int) -> Sample:
        return self.decode(int(i), self.source()[int(i)])

    def __getstate__(self):  # grain workers pickle the store; the reader reopens lazily
        state = dict(self.__dict__)
        state["_source"] = None
        return state


def open_stores(items) -> list[Store]:
    """Stores given as :class:`Store` objects or as folder paths."""
    return [s if isinstance(s, Store) else Store(s) for s in items]
