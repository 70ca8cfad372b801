"""Label efficiency on a real protocol: how each reader of the EEG scores with K labelled training
subjects, K = 2, 4, 8 and all, over seeds that draw which K.

    python experiments/label_efficiency.py eegmat   --store runs/stores/eegmat   --workdir runs/label-efficiency
    python experiments/label_efficiency.py eegmmidb --store runs/stores/eegmmidb --workdir runs/label-efficiency

(``eegpt prepare eegmat --source ../shared/data/MW/eegmat --out runs/stores/eegmat`` and likewise
``eegmmidb`` from ``../shared/data/MI/eegmmidb`` make the stores.)

The protocol is the benchmark's (``eegpt.protocols.folds``): its training subjects are the pool the K
are drawn from (``eegpt.benchmark.fewer_training_subjects``, the draw of ``eegpt benchmark
--train-subjects K``), and its scored subjects are scored — the test subjects when present, else the
validation subjects, which neither the choices here nor the foundation ETE ever read. Every arm
chooses its settings alike, by cross-validation grouped by subject over its K training subjects
(``eegpt.baseline.select_on_val``; with fewer than 3 subjects, the defaults), and is scored once.

Arms:
- the foundation ETE's features (``eegpt/weights/foundation``, pretrained on unlabelled EEG of
  the protocols' training subjects) read by a logistic regression, alone and beside band power:
  what a linear readout of the encoder gives, not EEGPT's fine-tuned graph;
- the classical peers of the protocol (band power, CSP + LDA, the Riemannian tangent space) as
  ``eegpt benchmark`` trains them;
- with ``--specialists``, braindecode's EEGNet as the benchmark trains it (its last epoch: there are
  no validation windows to choose one on);
- with ``--subject-norm``, the subject lever: the same readers with each subject's features
  standardised over all of that subject's windows (band power and the foundation ETE, then a
  logistic regression), and the Riemannian tangent space with each subject's covariances re-centred
  on that subject's Riemannian mean. This is transductive: it reads the scored subjects' unlabelled
  windows, and every arm it is applied to is marked "per subject".

Before any scored subject is read, each feature reader is also cross-validated over the training
subjects alone (``development``: folds grouped by subject); a choice of reader or of the subject lever
may rest on that, never on the scored subjects.

Writes ``WORKDIR/<protocol>.json`` (balanced accuracy per arm and K: mean, std and each seed's) and
``WORKDIR/<protocol>.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from eegpt.baseline import GRID, SPECIALISTS, classifier, fit_predict, select_on_val, store_arrays
from eegpt.benchmark import fewer_training_subjects
from eegpt.embed import pretrained_encoder
from eegpt.features import band_power
from eegpt.foundation import WEIGHTS
from eegpt.protocols import PROTOCOLS, check_ete_for, folds
from eegpt.store import Store

KS = (2, 4, 8, None)  # None: every training subject


def foundation_features(store, ete_dir="foundation") -> np.ndarray:
    """An ETE's (the foundation's) per-electrode features of every window, in store order, flattened [W, E*D]."""
    ete = pretrained_encoder(ete_dir)(store, None)
    return ete.reshape(len(ete), -1)


def per_subject(x: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Each subject's features standardised over all of that subject's windows (transductive)."""
    out = np.empty_like(x, dtype=np.float64)
    for subject in np.unique(subjects):
        rows = subjects == subject
        out[rows] = (x[rows] - x[rows].mean(0)) / (x[rows].std(0) + 1e-8)
    return out


def recentred_tangent_space(x: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Tangent vectors at the identity of each window's covariance after re-centring every subject's
    covariances on that subject's Riemannian mean (the subject lever for the Riemannian reader)."""
    from pyriemann.estimation import Covariances
    from pyriemann.geometry.base import invsqrtm
    from pyriemann.geometry.mean import mean_riemann
    from pyriemann.geometry.tangentspace import tangent_space

    covs = Covariances(estimator="oas").transform(np.asarray(x, np.float64))
    for subject in np.unique(subjects):
        rows = subjects == subject
        w = invsqrtm(mean_riemann(covs[rows]))
        covs[rows] = w @ covs[rows] @ w
    return tangent_space(covs, np.eye(covs.shape[1]), metric="riemann")


def lr_score(x, y, subjects, train, test) -> float:
    """Balanced accuracy on ``test`` of standardised features -> logistic regression, C chosen by
    cross-validation grouped by subject over ``train`` (the peers' way)."""
    from sklearn.metrics import balanced_accuracy_score

    model, _ = select_on_val(classifier, GRID["band_power"], x[train], y[train], None, None, subjects[train])
    return float(balanced_accuracy_score(y[test], model.predict(x[test])))


def development_scores(features: dict, y, subjects, pool, folds: int = 5) -> dict:
    """{arm: {mean, std, folds}}: each feature reader cross-validated over the training subjects alone
    (folds grouped by subject, C chosen inside each fold as everywhere here). The scored subjects are
    not read: this is what a choice between readers, or of the subject lever, may rest on."""
    from sklearn.model_selection import GroupKFold

    out = {}
    for arm, x in features.items():
        scores = [lr_score(x, y, subjects, pool[tr], pool[te])
                  for tr, te in GroupKFold(folds).split(pool, groups=subjects[pool])]
        out[arm] = {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "folds": scores}
    return out


def one_draw(store, split, features: dict, arms: list[str], seed: int) -> dict:
    """{arm: balanced accuracy on the scored subjects} for one draw of training subjects."""
    from sklearn.metrics import balanced_accuracy_score

    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    y, subjects = store.labels, store.subject_of
    out = {}
    for arm in arms:
        if arm in features:
            out[arm] = lr_score(features[arm], y, subjects, train, test)
        else:
            probs, y_te, _ = fit_predict(arm, store, train, test, None, seed=seed)
            out[arm] = float(balanced_accuracy_score(y_te, probs.argmax(1)))
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = result["ks"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for arm, by_k in result["arms"].items():
        ax.errorbar(range(len(ks)), [by_k[k]["mean"] for k in ks], yerr=[by_k[k]["std"] for k in ks],
                    marker="o", capsize=3, label=arm)
    ax.axhline(result["chance"], color="k", lw=0.8, ls=":", label="chance")
    ax.set_xticks(range(len(ks)), ks)
    ax.set_xlabel("labelled training subjects")
    ax.set_ylabel("balanced accuracy, scored subjects")
    ax.set_title(f"{result['protocol']}: {len(result['seeds'])} draws of training subjects; "
                 f"scored: {result['scored_subjects']}", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("protocol", choices=("eegmat", "eegmmidb"))
    p.add_argument("--store", required=True, help="the protocol's prepared store")
    p.add_argument("--workdir", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--specialists", action="store_true", help="add braindecode's EEGNet (the peers extra)")
    p.add_argument("--subject-norm", action="store_true",
                   help="add the readers with each subject's features standardised (transductive)")
    p.add_argument("--also-ete", nargs="+", default=[], metavar="NAME=DIR",
                   help="more encoders read beside the foundation ETE (a pretraining workdir each), as 'NAME + LR'")
    args = p.parse_args(argv)
    out_dir = Path(args.workdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    store = Store(args.store)
    (fold, split0, meaning), = folds(args.protocol, store)
    scored = sorted(set(store.subject_of[split0 == "test"]))
    # the foundation ETE must not have read a scored subject (the registry's check, as the benchmark's)
    check_ete_for(store.index["card"], json.loads((WEIGHTS / "metrics.json").read_text()), scored)
    x, _, _ = store_arrays(store)
    ete, bands = foundation_features(store), band_power(x, store.index["sfreq"])
    features = {"foundation ETE + LR": ete, "foundation ETE + band power + LR": np.concatenate([ete, bands], 1)}
    for name, ete_dir in (item.split("=", 1) for item in args.also_ete):
        check_ete_for(store.index["card"], json.loads((Path(ete_dir) / "metrics.json").read_text()), scored)
        features[f"{name} + LR"] = foundation_features(store, ete_dir)
    if args.subject_norm:
        subjects = store.subject_of
        features.update({"foundation ETE + LR, per subject": per_subject(ete, subjects),
                         "band power + LR, per subject": per_subject(bands, subjects),
                         "riemann, per subject (re-centred)": recentred_tangent_space(x, subjects)})
    arms = list(features) + list(PROTOCOLS[args.protocol].peers) + (["eegnet"] if args.specialists else [])
    pool = np.flatnonzero(split0 == "train")
    development = development_scores({"band power + LR": bands, **features},
                                     store.labels, store.subject_of, pool)
    print("grouped 5-fold cross-validation over the training subjects alone: "
          + ", ".join(f"{a} {v['mean']:.3f}" for a, v in development.items()), flush=True)
    n_pool = len(np.unique(store.subject_of[split0 == "train"]))
    ks = [k for k in KS if k is None or k < n_pool]
    runs = {arm: {} for arm in arms}
    for k in ks:
        label = "all" if k is None else str(k)
        for seed in args.seeds:
            split = fewer_training_subjects(split0, store.subject_of, k, seed)
            scores = one_draw(store, split, features, arms, seed)
            for arm, v in scores.items():
                runs[arm].setdefault(label, []).append(v)
            print(f"K={label:>3} seed {seed}: " + ", ".join(f"{a} {v:.3f}" for a, v in scores.items()), flush=True)
            if k is None:
                break  # every training subject: no draw, the same for every seed
    labels = ["all" if k is None else str(k) for k in ks]
    result = {"protocol": args.protocol, "fold": meaning, "scored_subjects": f"{scored[0]}-{scored[-1]}",
              "training_pool": n_pool, "ks": labels, "seeds": args.seeds, "chance": 1 / len(np.unique(store.labels[split0 == "test"])),
              "metric": "balanced accuracy on the scored subjects; settings chosen by cross-validation grouped by "
                        "subject over the K training subjects (defaults below 3)",
              "arms": {arm: {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "runs": v}
                             for k, v in by_k.items()} for arm, by_k in runs.items()},
              "development": development,
              "specialists": {n: vars(SPECIALISTS[n]) for n in arms if n in SPECIALISTS},
              "seconds": round(time.perf_counter() - started, 1),
              "command": "python experiments/label_efficiency.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    (out_dir / f"{args.protocol}.json").write_text(json.dumps(result, indent=1))
    plot(result, out_dir / f"{args.protocol}.png")
    print(f"wrote {out_dir / args.protocol}.json and .png ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
