"""Does the ETE keep time-locked information when its per-token features are read in time order?

Issue 29's lever "time-locked information": on eegmmidb the signal is locked to the cue, and the
ETE's summary feature (trained to rebuild the window's mean log spectrum) carries no timing. This
probe reads, over the **training subjects only** (development cross-validation, one subject per
fold; the validation and test subjects are never read), logistic regressions on:

- ``erp``: the ERP bins (the linear start's winning view on eegmmidb);
- ``ete``: the ETE's summary feature per electrode (what the model reads today);
- ``ete_tokens``: the ETE's hidden state at each 1-s token, per electrode, in time order;
- ``ete_tokens_mean``: the same averaged over electrodes (time order kept, space averaged);
- ``erp+ete_tokens``: the ERP bins beside the per-token features.

Every view goes through the same pipeline: standardised, reduced to its first 256 principal
components when wider (fitted on the training fold), then a logistic regression whose C is chosen
inside each training fold by a grouped 3-fold search. Outer folds: 4, grouped by subject.

    python experiments/timelocked_probe.py --data runs/stores/eegmmidb --ete foundation \
        --json docs/results/probes/timelocked-eegmmidb.json
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
from flax import nnx

from eegpt.baseline import GRID, store_arrays
from eegpt.features import erp_bins
from eegpt.finetune import load_ete
from eegpt.pipeline import graph_batches
from eegpt.store import open_stores

VIEWS = ("erp", "ete", "ete_tokens", "ete_tokens_mean", "erp+ete_tokens")


def token_features(ete_dir, store, split):
    """([W, E, D] summary features, [W, E, N, D] per-token hidden states) in the store's order."""
    graphdef, params, cfg = load_ete(ete_dir)

    def run(p, b):
        out = nnx.merge(graphdef, p)(b["tokens_KxNxP"], b["electrode_K"], n_valid_B=b["n_tokens_K"])
        return out["feature"], out["hidden"].astype(np.float32)

    fn = jax.jit(run)
    summaries, hiddens = [], []
    for b in graph_batches([store], split, 32, tokens=cfg.tokens(), epochs=1, drop_remainder=False, shuffle=False,
                           layout="flat", shard_index=0, shard_count=1):
        feat, hid = (np.asarray(a) for a in fn(params, b))
        n_slots = b["mask_BxE"].size
        put = np.asarray(b["put_K"])
        s = np.zeros((n_slots + 1, feat.shape[-1]), np.float32)
        h = np.zeros((n_slots + 1, *hid.shape[1:]), np.float32)
        s[put], h[put] = feat, hid
        shape = b["mask_BxE"].shape
        summaries.append(s[:n_slots].reshape(*shape, -1)[b["real_B"]])
        hiddens.append(h[:n_slots].reshape(*shape, *hid.shape[1:])[b["real_B"]])
    return np.concatenate(summaries), np.concatenate(hiddens)


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--ete", default="foundation")
    ap.add_argument("--json")
    args = ap.parse_args()
    t0 = time.time()
    store = open_stores([args.data])[0]
    x, y, subjects = store_arrays(store, store.indices("train"))
    summary, hidden = token_features(args.ete, store, "train")
    assert len(summary) == len(y), (len(summary), len(y))
    w = len(y)
    feats = {"erp": erp_bins(x, store.index["sfreq"]).reshape(w, -1), "ete": summary.reshape(w, -1),
             "ete_tokens": hidden.reshape(w, -1), "ete_tokens_mean": hidden.mean(1).reshape(w, -1)}
    feats["erp+ete_tokens"] = np.concatenate([feats["erp"], feats["ete_tokens"]], 1)
    out = {"data": args.data, "ete": args.ete, "windows": w, "subjects": sorted(map(str, np.unique(subjects))),
           "split": "train (development cross-validation, 4 folds grouped by subject)", "views": {}}
    warnings.filterwarnings("ignore", message="y_pred contains classes")  # a subject without every class
    for name in VIEWS:
        scores = []
        for tr, te in GroupKFold(4).split(feats[name], y, subjects):
            steps = [StandardScaler()] + ([PCA(256, random_state=0)] if feats[name].shape[1] > 256 else [])
            search = GridSearchCV(make_pipeline(*steps, LogisticRegression(max_iter=2000, class_weight="balanced")),
                                  GRID["band_power"], scoring="balanced_accuracy",
                                  cv=GroupKFold(3).split(feats[name][tr], y[tr], subjects[tr]))
            search.fit(feats[name][tr], y[tr])
            scores.append(float(balanced_accuracy_score(y[te], search.predict(feats[name][te]))))
        out["views"][name] = {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "folds": scores,
                              "columns": int(feats[name].shape[1])}
        print(f"{name:<18} {np.mean(scores):.3f} ± {np.std(scores):.3f}  ({feats[name].shape[1]} columns, "
              f"{time.time() - t0:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
