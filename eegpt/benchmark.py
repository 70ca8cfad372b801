"""``eegpt benchmark NAME --source DIR --workdir W``: a real dataset, its standard protocol, the
model and a classical baseline scored on the same windows by the same metrics.

Each protocol prepares the dataset from the folder a user downloaded, assigns windows to
train / val / test, pretrains an ETE on the training windows only (or reuses ``--ete``), fine-tunes
the graph with that ETE frozen, and scores both the model and the baseline on the scored split:

- ``eegmat``: train subjects 00–25, select on 26–30, score on 31–35. A download without 31–35
  (``../shared/data`` stops at 30) is scored on 26–30 with nothing held out for selection (the last
  step is kept), and ``results.json`` says so. Baseline: log band power + logistic regression.
- ``n170``: eeg-notebooks face vs house, leave one subject out (every subject scored once, with
  the others as training); ERP baseline (50-ms bins + logistic regression). 1-s trials hold one
  1-s token, so the ETE here uses 0.5-s tokens (``token_len=128``).
- ``eegmmidb``: subject S001, imagined left vs right fist, train on runs 4 and 8, score on run 12
  (no validation run: the last step is kept). Baseline: MNE's CSP + LDA.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegpt.errors import EEGInputError, atomic_write

PUBLISHED = {"eegmat": {"EEGNet": 0.600, "NeuroLM": 0.657, "EEGPT-Base": "0.660 ± 0.086"}}


@dataclass(frozen=True)
class Protocol:
    card: str
    baseline: str
    token_len: int | None = None  # ETE token override for short trials


PROTOCOLS = {"eegmat": Protocol("eegmat", "band_power"), "n170": Protocol("eegnb-n170", "erp", token_len=128),
             "eegmmidb": Protocol("eegmmidb", "csp_lda")}


def folds(name: str, store) -> list[tuple[str, np.ndarray, str]]:
    """(fold name, split of every window, what the split means) for a protocol."""
    if name == "eegmat":
        split = store.split_of.copy()
        if (split == "test").any():
            return [("split", split, "train 00-25, select on 26-30, score on 31-35")]
        split[split == "val"] = "test"  # nothing beyond 30 here: score on 26-30, select on nothing
        return [("split", split, "train 00-25, score on 26-30 (31-35 absent in this download; last step kept)")]
    if name == "n170":
        out = []
        for subject in np.unique(store.subject_of):
            split = np.where(store.subject_of == subject, "test", "train")
            out.append((f"subject-{subject}", split, f"leave subject {subject} out"))
        return out
    run = np.asarray([int(m.group(1)) if (m := re.search(r"R(\d\d)", f)) else -1 for f in store.file_of])
    s001 = store.subject_of == "001"
    split = np.where(s001 & np.isin(run, (4, 8)), "train", np.where(s001 & (run == 12), "test", "unassigned"))
    if not (split == "train").any() or not (split == "test").any():
        raise EEGInputError(f"{store.path}: needs S001 runs 4, 8 and 12 (imagined left/right fist)")
    return [("S001", split, "S001: train on runs 4 and 8, score on run 12 (last step kept)")]


def _score(labels, probs, present) -> dict:
    """Metrics over the protocol's classes only: probabilities renormalised over the classes
    trained on (a head of a 4-class card scored on a 2-class protocol must not pick the others)."""
    from eegpt.metrics import classification

    p = probs[:, present]
    return classification(np.searchsorted(present, labels), p / np.maximum(p.sum(1, keepdims=True), 1e-12),
                          len(present))


def benchmark(name: str, source, workdir, ete=None, preset: str = "base", pretrain_steps: int = 1000,
              finetune_steps: int = 600, batch_size: int = 32, progress: bool = True) -> dict:
    from eegpt.baseline import fit_predict
    from eegpt.finetune import FinetuneConfig, finetune
    from eegpt.model import load
    from eegpt.metrics import mean_std
    from eegpt.store import prepare
    from eegpt.train import PretrainConfig, pretrain

    if name not in PROTOCOLS:
        raise EEGInputError(f"unknown benchmark {name!r}; choose from {', '.join(PROTOCOLS)}")
    proto = PROTOCOLS[name]
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    store = prepare(proto.card, source, workdir / "store", progress=progress)
    runs, baselines, described = [], [], []
    for fold, split, what in folds(name, store):
        s = store.with_splits(split)
        fold_dir = workdir / fold
        present = np.unique(s.labels[s.indices("train")])  # eegmmidb's imagery runs: 2 of the card's 4
        ete_dir = ete
        if ete_dir is None:  # pretraining sees the training windows of this fold only
            cfg = PretrainConfig(preset=preset, steps=pretrain_steps, batch_size=256, seq_tokens=2 if proto.token_len else 4,
                                 model=(("token_len", proto.token_len),) if proto.token_len else (),
                                 eval_split="train", eval_batches=5, ckpt_every=max(pretrain_steps, 1))
            pretrain(cfg, [s], fold_dir / "ete", progress=progress, track=False)
            ete_dir = fold_dir / "ete"
        ft = FinetuneConfig(steps=finetune_steps, batch_size=batch_size, eval_every=max(finetune_steps // 5, 1),
                            lr=3e-3, k_neighbours=8, patience=100)
        finetune(ete_dir, [s], fold_dir / "finetune", ft, progress=progress, track=False)
        scored = load(fold_dir / "finetune").run(s, "test")
        r = _score(scored["labels"], scored["probs"], present)
        probs, labels, _ = fit_predict(proto.baseline, s, s.indices("train"), s.indices("test"))
        b = _score(labels, probs, present)
        runs.append({"fold": fold, **r})
        baselines.append({"fold": fold, **b})
        described.append(what)
    one = len(runs) == 1
    results = {"benchmark": name, "card": proto.card, "split": described[0] if one else
               f"leave-one-subject-out over {len(runs)} subjects", "folds": described,
               "classes": [store.classes[c] for c in present], "baseline_name": proto.baseline,
               "test": runs[0] if one else {**mean_std(runs), "per_fold": runs},
               "baseline": baselines[0] if one else {**mean_std(baselines), "per_fold": baselines},
               "published_balanced_accuracy": PUBLISHED.get(name, {}),
               "pretraining": "reused " + str(ete) if ete else f"{preset}, {pretrain_steps} steps on each fold's training windows",
               "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write(workdir / "results.json", lambda p: p.write_text(json.dumps(results, indent=2) + "\n"))
    return results


def print_results(r: dict) -> None:
    """The model and its baseline side by side (``eegpt benchmark``)."""
    def value(block, key):
        v = block.get(key)
        return "-" if v is None else (f"{v['mean']:.3f} ± {v['std']:.3f}" if isinstance(v, dict) else f"{v:.3f}")

    print(f"{r['benchmark']}: {r['split']}")
    print(f"{'':<22} {'bal. acc.':>15} {'kappa':>15} {'w. F1':>15} {'AUROC':>15}")
    for label, block in (("EEGPT", r["test"]), (r["baseline_name"], r["baseline"])):
        print(f"{label:<22} " + " ".join(f"{value(block, k):>15}" for k in
                                          ("balanced_accuracy", "cohen_kappa", "weighted_f1", "auroc")))
