"""The classical baseline every result is shown beside: log band power per electrode + logistic
regression (scikit-learn), and the classification metrics we report."""

from __future__ import annotations

import numpy as np
import scipy.signal
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0),
         "gamma": (30.0, 45.0)}


def band_power(x_WxExS: np.ndarray, sfreq: float) -> np.ndarray:
    """Log band power of each electrode in the five classical bands: [W, E * 5]."""
    nper = int(min(x_WxExS.shape[-1], sfreq))  # 1-s Welch segments (or the whole window)
    freqs, psd = scipy.signal.welch(x_WxExS, fs=sfreq, nperseg=nper, axis=-1)
    feats = [np.log(psd[..., (freqs >= lo) & (freqs < hi)].mean(-1) + 1e-12) for lo, hi in BANDS.values()]
    return np.stack(feats, axis=-1).reshape(len(x_WxExS), -1)


def classifier():
    """Standardised features -> class-balanced logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1, class_weight="balanced"))


def metrics(y_true, y_pred) -> dict:
    return {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "cohen_kappa": float(cohen_kappa_score(y_true, y_pred)),
            "weighted_f1": float(f1_score(y_true, y_pred, average="weighted"))}


def store_arrays(store, positions=None):
    """All windows of a store (or those at ``positions``) with one montage: (x [W, E, S], y, subjects)."""
    positions = np.arange(len(store)) if positions is None else np.asarray(positions)
    samples = [store[i] for i in positions]
    montages = {tuple(s.electrodes) for s in samples}
    if len(montages) > 1:
        raise ValueError(f"{store.path}: {len(montages)} montages; the band-power baseline needs one")
    return (np.stack([s.x for s in samples]), np.asarray([s.label for s in samples]),
            np.asarray([s.subject for s in samples]))
