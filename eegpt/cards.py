"""Dataset cards: what a public dataset is, and how its files become labelled windows.

A card is a small TOML file in ``eegpt/data/`` (package data): task, classes, channels, rate, where to get it, licence,
the standard cross-subject split, and the rules that read labels. Two label adapters cover the
datasets we prepare:

- ``filename``: one class per recording, read from its file name (EEGMAT ``_1``/``_2``, STEW
  ``_lo``/``_hi``);
- ``events``: classes from events: the file's own annotations (EDF+, GDF, BrainVision, a CSV marker
  column), a BIDS ``_events.tsv`` beside it, or a paired annotation file (Sleep-EDF hypnograms).
  Rules pick an event map per file (eegmmidb's runs mean different things).

Cards of datasets whose files we cannot read yet say so (``prepare = false``) and why.
"""

from __future__ import annotations

import csv
import importlib.resources
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import mne
import numpy as np

from eegpt.recording import Recording
from eegpt.errors import READER_ERRORS, EEGInputError, from_reader

# Cards are package data (eegpt/data/*.toml), so a wheel installed anywhere finds them.
CARDS_DIR = Path(str(importlib.resources.files("eegpt") / "data"))


@dataclass(frozen=True)
class Card:
    """One dataset card (see ``eegpt/data/*.toml``)."""

    name: str
    title: str
    task: str
    classes: tuple[str, ...]
    channels: str
    sfreq: str
    source: str
    licence: str
    split: dict
    prepare: bool = True
    why_not: str = ""
    files: dict = field(default_factory=dict)
    read: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    window: dict = field(default_factory=dict)
    fetcher: str = ""
    citation: str = ""
    notes: str = ""
    path: str = ""

    @property
    def window_s(self) -> float:
        return float(self.window.get("length_s", 4.0))

    @property
    def stride_s(self) -> float:
        return float(self.window.get("stride_s", self.window_s))


def card_names() -> list[str]:
    """The names of the dataset cards shipped with the package, sorted."""
    return sorted(p.stem for p in CARDS_DIR.glob("*.toml"))


def load_card(name_or_path: str) -> Card:
    """A card by name (``eegmat``) or by path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = CARDS_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise EEGInputError(f"{name_or_path}: no such dataset card; known cards: {', '.join(card_names())}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise EEGInputError(f"{path}: not a valid card ({err})") from None
    known = set(Card.__dataclass_fields__)
    extra = set(raw) - known
    if extra:
        raise EEGInputError(f"{path}: unknown card field(s) {', '.join(sorted(extra))}")
    raw["classes"] = tuple(raw.get("classes", ()))
    try:
        return Card(**raw, path=str(path))
    except TypeError as err:
        raise EEGInputError(f"{path}: incomplete card ({err})") from None


# ----------------------------------------------------------------------------- subjects and splits

def subject_of(card: Card, rel: str) -> str:
    """Subject id from a file's path relative to the dataset folder (card ``files.subject`` regex)."""
    pattern = card.files.get("subject")
    if not pattern:
        return Path(rel).stem
    m = re.search(pattern, rel)
    if not m:
        raise EEGInputError(f"{rel}: cannot find the subject with pattern {pattern!r} of card {card.name}")
    return m.group(1)


def _in_range(subject: str, spec) -> bool:
    items = spec if isinstance(spec, list) else [spec]
    for item in items:
        item = str(item)
        if "-" in item and subject.isdigit():
            lo, hi = item.split("-")
            if int(lo) <= int(subject) <= int(hi):
                return True
        elif item == subject or (item.isdigit() and subject.isdigit() and int(item) == int(subject)):
            return True
    return False


def split_of(card: Card, subjects: list[str]) -> dict[str, str]:
    """subject -> "train" / "val" / "test" / "unassigned" by the card's standard split.

    A split is either ranges per part (``train = "00-25"``) or, for corpora of any size,
    ``fractions = [train, val, test]`` over the sorted subjects (test taken from the end).
    """
    split = card.split
    ordered = sorted(set(subjects), key=lambda s: (len(s), s))
    if "fractions" in split:
        _, f_val, f_test = split["fractions"]
        n = len(ordered)
        n_test = max(1, round(n * f_test)) if n >= 3 else 0
        n_val = max(1, round(n * f_val)) if n >= 3 else 0
        parts = ["train"] * (n - n_val - n_test) + ["val"] * n_val + ["test"] * n_test
        return dict(zip(ordered, parts))
    out = {}
    for s in ordered:
        out[s] = next((part for part in ("train", "val", "test") if part in split
                       and _in_range(s, split[part])), "unassigned")
    return out


# ----------------------------------------------------------------------------- labelled windows

def _events_for(card: Card, rec: Recording, path: Path) -> mne.Annotations:
    source = card.labels.get("source", "annotations")
    if source == "annotations":
        return rec.events
    if source == "tsv":
        tsv = Path(re.sub(r"_eeg\.[^.]+$", "_events.tsv", str(path)))
        if not tsv.exists():
            raise EEGInputError(f"{path}: no events file {tsv.name} beside it")
        with open(tsv, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        col = card.labels.get("column", "trial_type")
        return mne.Annotations([float(r["onset"]) for r in rows], [float(r["duration"]) for r in rows],
                               [r[col] for r in rows])
    if source == "paired":
        pat, glob = card.labels["pair"]
        m = re.search(pat, path.name)
        if not m:
            raise EEGInputError(f"{path}: name does not match {pat!r}; cannot find its annotation file")
        matches = sorted(path.parent.glob(m.expand(glob)))
        if not matches:
            raise EEGInputError(f"{path}: no annotation file {m.expand(glob)!r} beside it")
        try:
            return mne.read_annotations(matches[0])
        except READER_ERRORS as err:
            if not from_reader(err):
                raise
            raise EEGInputError(f"{matches[0]}: cannot read annotations ({err})") from None
    raise EEGInputError(f"{card.path}: unknown labels.source {source!r}")


def _rule_for(card: Card, path: Path) -> dict | None:
    for rule in card.labels.get("rules", [{}]):
        if re.search(rule.get("files", ""), path.name):
            return rule
    return None


def label_segments(card: Card, rec: Recording, path: Path) -> list[tuple[float, float, int]] | None:
    """Labelled time spans ``(start_s, stop_s, class_index)`` of a recording, or None when the card
    says this file carries nothing to learn (an eegmmidb baseline run, say)."""
    classes = {c: i for i, c in enumerate(card.classes)}
    adapter = card.labels.get("adapter")
    rule = _rule_for(card, path)
    if rule is None:
        return None
    if adapter == "filename":
        m = re.search(card.labels["pattern"], path.name)
        label = rule.get("map", card.labels.get("map", {})).get(m.group(1)) if m else None
        if label is None:
            return None
        return [(0.0, rec.duration, classes[label])]
    if adapter == "events":
        mapping = rule.get("map", card.labels.get("map", {}))
        tmin = float(card.window.get("tmin", 0.0))
        tmax = card.window.get("tmax")
        out = []
        ann = _events_for(card, rec, path)
        for onset, duration, desc in zip(ann.onset, ann.duration, ann.description):
            label = mapping.get(str(desc))
            if label is None:
                continue
            stop = onset + (float(tmax) if tmax is not None else float(duration))
            out.append((float(onset + tmin), float(stop), classes[label]))
        return out
    raise EEGInputError(f"{card.path}: unknown labels.adapter {adapter!r}")


def window_starts(a: int, b: int, n_win: int, n_stride: int) -> list[int]:
    """Start samples of the windows that tile samples ``a``..``b`` (the one windowing rule: stores
    and :func:`eegpt.predict` cut recordings alike)."""
    return list(range(a, b - n_win + 1, n_stride))


def windows(card: Card, rec: Recording, path: Path, continuous: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cut a preprocessed recording into labelled windows: (x [W, E, S] float32, labels [W]).

    Each labelled span is tiled by windows of ``window.length_s`` every ``window.stride_s``;
    windows that would leave the recording are dropped. ``continuous``: the whole recording is
    tiled the same way, labelled or not, every window labelled -1 (pretraining's data).

    Raises
    ------
    EEGInputError
        When the recording is shorter than one window.
    """
    n_win = int(round(card.window_s * rec.sfreq))
    n_stride = int(round(card.stride_s * rec.sfreq))
    if rec.n_samples < n_win:
        raise EEGInputError(f"{path}: {rec.duration:.2f} s long, shorter than one "
                            f"{card.window_s:g}-s window of card {card.name}")
    spans = [(0.0, rec.duration, -1)] if continuous else label_segments(card, rec, path) or []
    starts, labels = [], []
    for start_s, stop_s, k in spans:
        a = int(round(start_s * rec.sfreq))
        b = min(int(round(stop_s * rec.sfreq)), rec.n_samples)
        if a < 0:
            continue  # the epoch would start before the recording does
        span = window_starts(a, b, n_win, n_stride)
        starts += span
        labels += [k] * len(span)
    if not starts:
        return np.zeros((0, len(rec.electrodes), n_win), np.float32), np.zeros(0, np.int32)
    x = np.stack([rec.signals[:, s:s + n_win] for s in starts])
    return x.astype(np.float32, copy=False), np.asarray(labels, np.int32)


def fetch(card: Card, out, subjects: list[int]) -> Path:
    """Download a dataset with MNE's own fetcher, for the cards that name one (``card.fetcher``).

    This is the only code that touches the network, and only when a user asks; it returns the
    folder to pass to ``eegpt prepare --source``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if card.fetcher == "mne.datasets.eegbci.load_data":
        mne.datasets.eegbci.load_data(subjects, runs=[4, 6, 8, 10, 12, 14], path=str(out),
                                      update_path=False, verbose="error")
    elif card.fetcher == "mne.datasets.sleep_physionet.age.fetch_data":
        mne.datasets.sleep_physionet.age.fetch_data(subjects, recording=[1], path=str(out),
                                                    on_missing="warn", verbose="error")
    else:
        raise EEGInputError(f"card {card.name}: no downloader; get it from {card.source}")
    return out
