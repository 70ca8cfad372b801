"""How hard is the synthetic corpus? Band power + logistic regression across held-out subjects.

Writes the corpus (unless present), prepares one store per task, and scores the baseline with
subject-grouped K-fold cross-validation: each fold trains on some subjects and tests on others it
has never seen. Every task should land between 0.6 and 0.95 balanced accuracy: above chance, so
there is something to learn, and below ceiling, so a better model can show it.

Run (about 2 minutes on 2 CPU cores):

    python experiments/synthetic_baseline.py --workdir runs/synth-baseline

Prints a table and writes ``WORKDIR/synthetic_baseline.json`` and ``WORKDIR/synthetic_baseline.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

from eegpt.baseline import classifier, store_arrays
from eegpt.features import band_power
from eegpt.metrics import classification
from eegpt.errors import EEGInputError
from eegpt.demo import synthetic_stores


def run(workdir: Path, subjects: int, seed: int, folds: int) -> dict:
    print(f"the synthetic corpus and its stores: {subjects} subjects x 5 tasks ...", flush=True)
    stores = synthetic_stores(workdir, subjects, seed)
    results = {"subjects": subjects, "seed": seed, "folds": folds, "tasks": {}}
    for task, store in stores.items():
        x, y, groups = store_arrays(store)
        feats = band_power(x, store.index["sfreq"])
        scores = []
        for train, test in GroupKFold(folds).split(feats, y, groups):
            clf = classifier().fit(feats[train], y[train])
            scores.append(classification(y[test], clf.predict_proba(feats[test]), len(store.classes)))
        bacc = [s["balanced_accuracy"] for s in scores]
        results["tasks"][task] = {
            "n_classes": len(store.classes), "windows": int(len(y)),
            "balanced_accuracy": float(np.mean(bacc)), "balanced_accuracy_std": float(np.std(bacc)),
            "cohen_kappa": float(np.mean([s["cohen_kappa"] for s in scores])),
            "weighted_f1": float(np.mean([s["weighted_f1"] for s in scores])),
            "chance": 1.0 / len(store.classes)}
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"])
    r = results["tasks"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(tasks, [r[t]["balanced_accuracy"] for t in tasks], yerr=[r[t]["balanced_accuracy_std"] for t in tasks],
           color="#4c78a8", capsize=4, label="band power + logistic regression")
    ax.scatter(tasks, [r[t]["chance"] for t in tasks], marker="_", s=600, color="k", label="chance")
    ax.axhspan(0.6, 0.95, color="#54a24b", alpha=0.12, label="target band 0.6-0.95")
    ax.set_ylim(0, 1)
    ax.set_ylabel("balanced accuracy (held-out subjects)")
    ax.set_title(f"Synthetic corpus: {results['subjects']} subjects, {results['folds']}-fold by subject")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("runs/synth-baseline"))
    p.add_argument("--subjects", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        results = run(args.workdir, args.subjects, args.seed, args.folds)
    except EEGInputError as err:
        print(f"synthetic_baseline: {err}", file=sys.stderr)
        return 2
    results["seconds"] = round(time.time() - t0, 1)
    print(f"\n{'task':<5} {'classes':>7} {'windows':>8} {'bal. acc.':>14} {'kappa':>6} {'chance':>7}")
    for task, r in results["tasks"].items():
        print(f"{task:<5} {r['n_classes']:>7} {r['windows']:>8} {r['balanced_accuracy']:>8.3f} ± {r['balanced_accuracy_std']:.3f}"
              f" {r['cohen_kappa']:>6.3f} {r['chance']:>7.2f}")
    out = args.workdir / "synthetic_baseline.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.workdir / "synthetic_baseline.png")
    print(f"\n{results['seconds']} s; wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
