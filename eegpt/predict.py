"""Asking a trained model about a recording: ``predict(model, x)``.

``x`` is a file path, a :class:`~eegpt.recording.Recording`, an ``mne.io.Raw`` or an
``mne.Epochs``. The recording is read as :func:`eegpt.read` reads it, prepared with the head's own
recipe, cut into windows exactly as the head's store cut its training data (the card's window
length and stride, :func:`eegpt.cards.window_starts`), and scored in fixed-size batches. The result
holds per-window class probabilities with start times, the recording-level summary (mean
probability per class), the graph's pooled embedding of every window, and which data trained the
model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegpt.cards import window_starts
from eegpt.electrodes import ID
from eegpt.errors import EEGInputError, atomic_write
from eegpt.model import EEGPT, graph_inputs, load
from eegpt.pipeline import collate_graph, tokenize
from eegpt.preprocess import preprocess
from eegpt.recording import Recording, read


UNFAMILIAR_ABOVE = 0.5  # a recording most of whose windows are unlike the training data gets no reading


@dataclass
class Prediction:
    """What a model says about one recording.

    Attributes
    ----------
    source : the recording's file (or ``<Raw>`` / ``<memory>``).
    head, task, classes : which head answered, its task and class names.
    starts_s : start of each window in seconds from the recording's first sample.
    window_s : window length in seconds.
    probs : [windows, classes] class probabilities.
    pooled : [windows, D] the graph's pooled embedding of each window.
    trained_on : one sentence saying which data trained the model.
    synthetic : True when the model was trained on the synthetic corpus only.
    unfamiliar : the share of windows unlike every training window (farther from the nearest one,
        in the graph's input averaged over electrodes, than 99 % of held-out windows were); None for a model
        saved without the reference. Above ``UNFAMILIAR_ABOVE`` the recording is out of
        distribution and the copilot gives no reading.
    read_as : how the recording's channels became the electrodes the head read (their number, and
        any placed by position or interpolated onto sites).
    eeg_tokens : each window's EEG tokens — (standardised per-electrode features [windows, E, F],
        electrode ids [windows, E], mask [windows, E]), the graph's input — which the EEG-only
        copilot reads instead of the head's class.
    """

    source: str
    head: str
    task: str
    classes: tuple[str, ...]
    starts_s: np.ndarray
    window_s: float
    probs: np.ndarray
    pooled: np.ndarray
    trained_on: str
    synthetic: bool
    unfamiliar: float | None = None
    read_as: str = ""
    eeg_tokens: tuple | None = None

    @property
    def out_of_distribution(self) -> bool:
        return self.unfamiliar is not None and self.unfamiliar > UNFAMILIAR_ABOVE

    @property
    def summary(self) -> dict[str, float]:
        """Mean probability of each class over the windows."""
        return {c: float(v) for c, v in zip(self.classes, self.probs.mean(0))}

    @property
    def label(self) -> str:
        """The class with the highest mean probability."""
        return self.classes[int(self.probs.mean(0).argmax())]

    @property
    def window_labels(self) -> list[str]:
        return [self.classes[i] for i in self.probs.argmax(1)]

    def to_dict(self) -> dict:
        """JSON-ready: summary, label, provenance and every window (start, label, probabilities)."""
        return {"source": self.source, "head": self.head, "task": self.task, "classes": list(self.classes),
                "label": self.label, "summary": self.summary, "window_s": self.window_s,
                "trained_on": self.trained_on, "synthetic": self.synthetic, "read_as": self.read_as,
                "unfamiliar": self.unfamiliar, "out_of_distribution": self.out_of_distribution,
                "windows": [{"start_s": round(float(t), 4), "label": lab,
                             "probs": {c: round(float(p), 6) for c, p in zip(self.classes, row)}}
                            for t, lab, row in zip(self.starts_s, self.window_labels, self.probs)]}

    def write_csv(self, path) -> None:
        """One row per window: start_s, label, then one probability column per class."""
        header = ",".join(["start_s", "label", *self.classes])
        rows = [",".join([f"{t:.4f}", lab, *(f"{p:.6f}" for p in row)])
                for t, lab, row in zip(self.starts_s, self.window_labels, self.probs)]
        atomic_write(path, lambda t: t.write_text("\n".join([header, *rows]) + "\n"))

    def plot(self, path) -> None:
        """Class probabilities over time (stacked); for sleep, the hypnogram of the window labels above."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sleep = self.task == "SS"
        fig, axes = plt.subplots(2 if sleep else 1, 1, figsize=(10, 5 if sleep else 3.2), sharex=True,
                                 squeeze=False)
        t = self.starts_s + self.window_s / 2
        if sleep:  # hypnogram: wake on top, deepest stage at the bottom, REM as in clinical plots
            order = [c for c in ("W", "REM", "N1", "N2", "N3") if c in self.classes] or list(self.classes)
            level = {c: len(order) - 1 - i for i, c in enumerate(order)}
            ax = axes[0, 0]
            ax.step(t, [level.get(c, 0) for c in self.window_labels], where="mid", color="k")
            ax.set_yticks(list(level.values()), list(level.keys()))
            ax.set_title(f"{Path(self.source).name}: hypnogram ({self.head})")
        ax = axes[-1, 0]
        ax.stackplot(t, self.probs.T, labels=self.classes, step="mid", alpha=0.85)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_xlabel("time (s)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        if not sleep:
            ax.set_title(f"{Path(self.source).name}: {self.task} via {self.head}")
        fig.text(0.01, 0.01, self.trained_on, fontsize=6, wrap=True)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
        plt.close(fig)


def choose_head(model: EEGPT, electrodes: list[str], task: str | None = None, head: str | None = None) -> str:
    """``head``; else the head of ``task`` (or any head) whose training montages share most
    electrodes with the recording (Jaccard overlap)."""
    if head is not None:
        return model.cfg.head(head).name
    cands = [h for h in model.cfg.heads if task is None or h.task == task]
    if not cands:
        raise EEGInputError(f"this model has no {task} head; it has "
                            f"{', '.join(sorted({h.task for h in model.cfg.heads}))}")
    have = set(electrodes)

    def overlap(h):
        return max((len(set(m) & have) / len(set(m) | have) for m in h.montages), default=0.0)

    return max(cands, key=overlap).name


PLACES = ("nearest", "splines", "montage")


def _as_recording(x, montage: str | None = None, place: str = "nearest", onto=None) -> Recording:
    if isinstance(x, Recording):
        if x.unit != "uV":
            raise EEGInputError(f"{x.source}: this Recording is already preprocessed ({x.unit}); pass the "
                                "recording as read, the model applies its own recipe")
        if montage is not None or place != "nearest" or onto is not None:
            raise EEGInputError(f"{x.source}: montage= and place= apply when reading; a Recording is read "
                                "already and keeps no positions: pass the file or the MNE object")
        return x
    return read(x, montage=montage, place="splines" if onto is not None else place, onto=onto)


def _read_as(rec: Recording) -> str:
    said = f"{len(rec.electrodes)} electrodes"
    if "splines" in rec.meta:
        return f"{said}: {rec.meta['splines']}"
    placed = rec.meta.get("by_position", {})
    return f"{said}, {len(placed)} of them placed by position" if placed else f"{said} by name"


def predict(model, x, *, task: str | None = None, head: str | None = None, seconds: float | None = None,
            batch_size: int = 32, montage: str | None = None, place: str = "nearest") -> Prediction:
    """Ask a trained model about one recording.

    Parameters
    ----------
    model : EEGPT or path
        A loaded model (:func:`eegpt.load`) or a model directory.
    x : path, Recording, mne.io.Raw or mne.Epochs
        The recording, in µV as read (the model applies its own preprocessing).
    task : which task's head answers (``"ER"``, ``"MI"``, ...); default: the head whose training
        montages match the recording's electrodes best.
    head : a head by dataset name (overrides ``task``).
    seconds : only the first ``seconds`` of the recording (cut before filtering).
    batch_size : windows per forward pass.
    montage : positions for a cap of numbered channels (as :func:`eegpt.read` takes it).
    place : how positioned channels are read: ``"nearest"`` and ``"splines"`` as :func:`eegpt.read`
        reads them, or ``"montage"``: the cap interpolated by spherical splines onto the answering
        head's own montage (the electrodes it was trained on, those the cap covers), from the
        channels' positions — the file's, ``montage``'s, or their 10-05 names'. For caps that sit
        off the 10-10 sites; see the cap-positions ablation.

    Returns
    -------
    Prediction

    Raises
    ------
    EEGInputError
        For a recording that cannot be read, has no electrode the model knows, or is shorter than
        one window.
    """
    if not isinstance(model, EEGPT):
        model = load(model)
    if place not in PLACES:
        raise EEGInputError(f"place={place!r}: choose one of {', '.join(PLACES)}")
    if place == "montage":
        # the head: named, the task's only one, or chosen on the cap as read (only then is it read twice)
        of_task = [h.name for h in model.cfg.heads if h.task == task]
        only = head or (of_task[0] if len(of_task) == 1 else None)
        electrodes = [] if only else _as_recording(x, montage).electrodes
        rec = _as_recording(x, montage, onto=model.cfg.head(choose_head(model, electrodes, task, only)).electrodes)
    else:
        rec = _as_recording(x, montage, place)
    if seconds is not None:
        if seconds <= 0:
            raise EEGInputError(f"seconds={seconds}: must be positive")
        rec = dataclasses.replace(rec, signals=rec.signals[:, : max(int(seconds * rec.sfreq), 1)])
    spec = model.cfg.head(choose_head(model, rec.electrodes, task, head))
    rec = preprocess(rec, spec.recipe)
    w = spec.window_samples
    starts = window_starts(0, rec.n_samples, w, spec.stride_samples)
    if not len(starts):
        raise EEGInputError(f"{rec.source}: {rec.duration:.1f} s is shorter than one {spec.window_s:g}-s window "
                            f"of the {spec.name} head")
    scored = model.score(window_batches(model, rec, starts, w, batch_size), spec.name)
    return Prediction(rec.source, spec.name, spec.task, tuple(spec.classes), np.asarray(starts) / rec.sfreq,
                      spec.window_s, scored["probs"], scored["pooled"], model.cfg.trained_on(), model.cfg.synthetic,
                      model.unfamiliar(spec.name, scored), _read_as(rec),
                      (scored["features"], scored["electrodes"], scored["mask"]))


def window_batches(model: EEGPT, rec: Recording, starts, w: int, batch_size: int = 32, bucket: int = 64):
    """``(graph batch, real windows)`` pairs of the preprocessed ``rec``'s windows of ``w`` samples
    starting at ``starts`` (a short recording pays only for its own windows; ``bucket``: see
    :func:`eegpt.pipeline.collate_graph`)."""
    tokens = model.cfg.tokens
    ids = np.asarray([ID[e] for e in rec.electrodes], np.int32)
    n = len(starts)
    batch_size = min(batch_size, 1 << (n - 1).bit_length())
    for i in range(0, n, batch_size):
        chunk = [{"tokens": tokenize(rec.signals[:, s:s + w], tokens), "ids": ids, "task_B": 0,
                  "dataset_B": 0, "label_B": 0} for s in starts[i:i + batch_size]]
        yield graph_inputs(collate_graph(chunk, len(ids), tokens.count(w), tokens.token_len,
                                         model.cfg.layout, batch_size, bucket), model.cfg.k_neighbours), len(chunk)


def write_outputs(pred: Prediction, json_out=None, csv_out=None, plot_out=None) -> None:
    """The CLI's files, each written whole or not at all."""
    if json_out:
        atomic_write(json_out, lambda p: p.write_text(json.dumps(pred.to_dict(), indent=2) + "\n"))
    if csv_out:
        pred.write_csv(csv_out)
    if plot_out:
        pred.plot(plot_out)
