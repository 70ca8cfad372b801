"""The classification metrics every result reports (scikit-learn), calibration, the confusion
plot, and mean ± std over seeds. Models and baselines are scored by the same function."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (average_precision_score, balanced_accuracy_score, cohen_kappa_score,
                             confusion_matrix, f1_score, roc_auc_score)

HEADLINE = ("balanced_accuracy", "cohen_kappa", "weighted_f1", "auroc", "auc_pr", "ece")


def expected_calibration_error(y_true, probs, bins: int = 10) -> float:
    """Top-label ECE: the absolute gap between accuracy and confidence, averaged over equal-width confidence bins, weighted
    by their share of the predictions (Guo et al., 2017)."""
    probs = np.asarray(probs)
    conf, pred = probs.max(1), probs.argmax(1)
    correct = pred == np.asarray(y_true)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(correct[which == b].mean() - conf[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


def fit_temperature(logits, y_true) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T) on held-out
    windows (Guo et al. 2017): one number per head, so the ranking — and the accuracy — is unchanged."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    logits, y = np.asarray(logits, np.float64), np.asarray(y_true)

    def nll(log_t):
        return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean()

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.02), np.log(50.0)), method="bounded").x))


def coverage_curve(y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, accuracy): keeping only the windows of highest confidence, the accuracy on the
    share kept — what abstaining below a confidence threshold buys."""
    probs, y = np.asarray(probs), np.asarray(y_true)
    order = np.argsort(-probs.max(1), kind="stable")
    correct = (probs.argmax(1) == y)[order]
    kept = np.arange(1, len(y) + 1)
    return kept / len(y), np.cumsum(correct) / kept


def answer_threshold(y_true, probs, target: float = 0.9, min_coverage: float = 0.05) -> float:
    """The lowest confidence at which the windows answered (those at or above it) are still
    ``target`` accurate: the widest coverage on ``coverage_curve`` whose accuracy reaches ``target``,
    covering at least ``min_coverage`` of the windows. 0.0 when every window is that accurate
    already; 1.0 (answer almost never) when no such share exists."""
    probs = np.asarray(probs)
    coverage, accuracy = coverage_curve(y_true, probs)
    ok = np.flatnonzero((accuracy >= target) & (coverage >= min_coverage))
    if not len(ok):
        return 1.0
    if ok[-1] == len(accuracy) - 1:
        return 0.0
    confidence = np.sort(probs.max(1))[::-1]
    return float(confidence[ok[-1]])


def plot_coverage(curves: dict, path, title: str) -> None:
    """Accuracy against coverage, one line per curve (``{label: (coverage, accuracy)}``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for label, (cov, acc) in curves.items():
        ax.plot(cov, acc, label=label)
    ax.set_xlabel("coverage (share of windows answered)")
    ax.set_ylabel("accuracy on the windows answered")
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def classification(y_true, probs, n_classes: int | None = None) -> dict:
    """Balanced accuracy, Cohen's kappa, weighted F1, ECE, the confusion matrix, and for two
    classes AUROC and AUC-PR (positive = class 1), from true labels and class probabilities."""
    y_true, probs = np.asarray(y_true), np.asarray(probs, float)
    n_classes = n_classes or probs.shape[1]
    y_pred = probs.argmax(1)
    out = {"n": int(len(y_true)), "n_classes": int(n_classes),
           "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
           "cohen_kappa": float(cohen_kappa_score(y_true, y_pred, labels=list(range(n_classes)))),
           "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
           "ece": expected_calibration_error(y_true, probs),
           "confusion": confusion_matrix(y_true, y_pred, labels=list(range(n_classes))).tolist()}
    if n_classes == 2 and len(np.unique(y_true)) == 2:
        out["auroc"] = float(roc_auc_score(y_true, probs[:, 1]))
        out["auc_pr"] = float(average_precision_score(y_true, probs[:, 1]))
    return out


def mean_std(runs: list[dict]) -> dict:
    """``{metric: {"mean", "std", "runs"}}`` over runs (seeds or folds) for the headline metrics."""
    out = {}
    for key in HEADLINE + ("ece_uncalibrated",):
        values = [r[key] for r in runs if key in r]
        if values:
            out[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": values}
    return out


def plot_confusion(confusion, classes, path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, float)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = 1.2 + 0.6 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.6 else "black", fontsize=8)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_table(datasets: dict) -> None:
    """``eegpt evaluate``'s table: one row per dataset, mean ± std over runs where there are several."""
    print(f"{'dataset':<22} {'task':<4} {'n':>6} {'bal. acc.':>15} {'kappa':>15} {'w. F1':>15} {'AUROC':>15} {'ECE':>15} "
          f"{'ECE (T = 1)':>15}")
    for name, r in datasets.items():
        def cell(key):
            v = r.get(key)
            if v is None:
                return f"{'-':>15}"
            return f"{v['mean']:>7.3f} ± {v['std']:.3f}" if isinstance(v, dict) else f"{v:>15.3f}"
        n = r["n"] if "n" in r else r["per_run"][0]["n"]
        print(f"{name:<22} {r['task']:<4} {n:>6} {cell('balanced_accuracy')} {cell('cohen_kappa')} "
              f"{cell('weighted_f1')} {cell('auroc')} {cell('ece')} {cell('ece_uncalibrated')}")
