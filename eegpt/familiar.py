"""The out-of-distribution reference: what a head's training windows look like to the graph, and how
far a new subject's windows lie from them, so that a recording unlike the training data gets no
reading (``eegpt.predict``, the copilot)."""

from __future__ import annotations

import numpy as np

FAMILIAR_REFERENCE = 1024  # training windows kept per head as the reference


def window_profile(scored: dict) -> np.ndarray:
    """Each window's standardised node features averaged over its electrodes ([W, F]): what the
    out-of-distribution check compares. The graph's input, not its pooled output, so the check does
    not depend on how far the graph was trained (with the quick demo's model both separate real
    EEGMAT from held-out synthetic windows; with a briefly trained one only the input does)."""
    mask = np.asarray(scored["mask"], np.float32)[..., None]
    return (np.asarray(scored["features"]) * mask).sum(1) / np.maximum(mask.sum(1), 1.0)


def nearest_distance(queries, reference) -> np.ndarray:
    """Each query's Euclidean distance to its nearest reference row ([Q, D], [R, D] -> [Q])."""
    q, r = np.asarray(queries, np.float64), np.asarray(reference, np.float64)
    d2 = (q ** 2).sum(1)[:, None] + (r ** 2).sum(1)[None] - 2.0 * q @ r.T
    return np.sqrt(np.maximum(d2, 0.0)).min(1)


FAMILIAR_MIN_SUBJECTS = 3  # fewer training subjects cannot show how far a new subject's windows lie


def familiar_reference(train, subjects, held_out=None, seed: int = 0) -> tuple[np.ndarray, float] | None:
    """(reference, threshold) for the out-of-distribution check: up to ``FAMILIAR_REFERENCE``
    training windows' profiles (``window_profile``), and how far a *new subject's* windows lie from
    them — the 99th percentile of each training subject's distance to the reference windows of the
    other subjects (leave one subject out), pooled with the validation windows' (``held_out``)
    distance to the whole reference. None with fewer than ``FAMILIAR_MIN_SUBJECTS`` training
    subjects: too few to tell a new subject from data of another kind, so no check is made."""
    train, subjects = np.asarray(train, np.float32), np.asarray(subjects)
    groups = np.unique(subjects)
    if len(groups) < FAMILIAR_MIN_SUBJECTS:
        return None
    rng = np.random.default_rng(seed)
    ref = rng.choice(len(train), min(len(train), FAMILIAR_REFERENCE), replace=False)
    distances = [nearest_distance(held_out, train[ref])] if held_out is not None and len(held_out) else []
    for g in groups:
        others = ref[subjects[ref] != g]
        if len(others):
            distances.append(nearest_distance(train[subjects == g], train[others]))
    return train[ref], float(np.quantile(np.concatenate(distances), 0.99))
