"""Each benchmark's protocol — its card, its peers, how its windows split into train / val / test —
and the registry of the subjects each protocol holds out for validation and testing, which every
pretraining run is checked against: an ETE that saw a protocol's held-out subjects would carry
them into that protocol's scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from eegpt.errors import EEGInputError, TrainingError

@dataclass(frozen=True)
class Protocol:
    card: str
    peers: tuple[str, ...]  # the classical baselines; the specialist networks join when installed
    token_len: int | None = None  # ETE token override for short trials


# Every protocol has the Riemannian tangent-space peer beside its classical baselines (MOABB's TS + LR)
PROTOCOLS = {"eegmat": Protocol("eegmat", ("band_power", "riemann")),
             "eegmmidb": Protocol("eegmmidb", ("band_power", "csp_lda", "riemann")),
             "eegmmidb-s001": Protocol("eegmmidb", ("band_power", "csp_lda", "riemann")),
             "n170": Protocol("eegnb-n170", ("band_power", "erp", "riemann"), token_len=128),
             "p300": Protocol("eegnb-p300", ("band_power", "erp", "riemann"), token_len=128)}


def folds(name: str, store) -> list[tuple[str, np.ndarray, str]]:
    """(fold name, split of every window, what the split means) for a protocol."""
    if name == "eegmat":
        split = store.split_of.copy()
        if (split == "test").any():
            return [("split", split, "train 00-25, select on 26-30, score on 31-35")]
        split[split == "val"] = "test"  # nothing beyond 30 here: score on 26-30
        return [("split", split, "train 00-25, score on 26-30 (31-35 absent in this download: settings chosen by "
                                   "cross-validation over the training subjects)")]
    if name in ("n170", "p300"):
        out = []
        for subject in np.unique(store.subject_of):
            split = np.where(store.subject_of == subject, "test", "train")
            out.append((f"subject-{subject}", split, f"leave subject {subject} out"))
        return out
    run = np.asarray([int(m.group(1)) if (m := re.search(r"R(\d\d)", f)) else -1 for f in store.file_of])
    subject = store.subject_of.astype(int)
    fists = np.isin(run, (4, 8, 12))  # imagined left vs right fist
    if name == "eegmmidb-s001":
        s001 = subject == 1
        split = np.where(s001 & np.isin(run, (4, 8)), "train", np.where(s001 & (run == 12), "test", "unassigned"))
        if not (split == "train").any() or not (split == "test").any():
            raise EEGInputError(f"{store.path}: needs S001 runs 4, 8 and 12 (imagined left/right fist)")
        return [("S001", split, "S001: train on runs 4 and 8, score on run 12 (nothing to select on)")]
    split = np.full(len(store), "unassigned", dtype=object)
    split[fists & (subject <= 8)] = "train"
    split[fists & (subject >= 9) & (subject <= 11)] = "val"
    split[fists & (subject >= 12) & (subject <= 23)] = "test"
    split = split.astype(str)
    if not (split == "train").any() or not ((split == "val") | (split == "test")).any():
        raise EEGInputError(f"{store.path}: needs imagery runs 4, 8, 12 of S001-S008 and of S009-S011 or S012-S023")
    if (split == "test").any():
        return [("cross-subject", split, "imagined left vs right fist: train S001-S008, select on S009-S011, "
                                         "score on S012-S023")]
    split[split == "val"] = "test"
    return [("cross-subject", split, "imagined left vs right fist: train S001-S008, score on S009-S011 "
                                     "(S012-S023 absent in this download: settings chosen by cross-validation over the "
                                     "training subjects)")]


# Subjects no pretraining may read, per card: every protocol's validation and test subjects. eegmmidb
# has two protocols: this project's (S001-S008 / S009-S011 / S012-S023, the subjects its data holds)
# and the card's own for the full download (001-070 / 071-089 / 090-109). The eeg-notebooks cards
# are scored leaving each subject out in turn, so every subject is some fold's test subject.
HELD_OUT = {"eegmat": set(range(26, 36)),
            "eegmmidb": set(range(9, 24)) | set(range(71, 110)),
            "eegnb-n170": "every", "eegnb-p300": "every"}


def held_out_seen(card: str, subjects) -> list:
    """The subjects among ``subjects`` (a store's subject ids) that a protocol of ``card`` holds out."""
    held = HELD_OUT.get(card)
    if held is None:
        return []
    seen = sorted({str(s) for s in subjects})
    return seen if held == "every" else [s for s in seen if s.isdigit() and int(s) in held]


def check_pretraining(stores, allow_held_out: bool = False) -> dict:
    """``{card: the subjects whose windows pretraining reads}`` (recorded beside the ETE); refused in
    one line where any is a subject a benchmark protocol holds out for validation or testing,
    unless ``allow_held_out``."""
    seen = {}
    for s in stores:
        subjects = np.unique(s.subject_of[s.indices("train")])
        leaked = held_out_seen(s.name, subjects)
        if leaked and not allow_held_out:
            raise TrainingError(
                f"{s.path}: its training windows hold subjects {', '.join(leaked[:8])}"
                f"{' ...' if len(leaked) > 8 else ''} that the {s.name} benchmark holds out for validation or "
                "testing (eegpt.protocols.HELD_OUT); an ETE pretrained on them would leak into those scores. "
                "Prepare the store without them, or give --allow-held-out for an ETE no benchmark will read")
        seen.setdefault(s.name, set()).update(str(x) for x in subjects)
    return {card: sorted(v) for card, v in seen.items()}


def check_ete_for(card: str, ete_metrics: dict, scored_subjects) -> None:
    """Refuse an ETE (its ``metrics.json``) that was pretrained on any of ``scored_subjects`` of
    ``card`` — a benchmark's validation or test subjects — or on held-out subjects at all."""
    if ete_metrics.get("held_out_allowed"):
        raise EEGInputError("this ETE was pretrained with --allow-held-out: no benchmark may read it")
    seen = set(ete_metrics.get("subjects_seen", {}).get(card, []))
    overlap = sorted(seen & {str(x) for x in scored_subjects})
    if overlap:
        raise EEGInputError(f"the ETE was pretrained on {card} subjects {', '.join(overlap[:8])} that this protocol "
                            "selects on or scores; pretrain one without them")
