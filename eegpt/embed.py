"""Embeddings of windows (``eegpt embed``), their t-SNE picture with clustering scores (``eegpt tsne``),
as in EEGPT's unseen-data figure and the EEG Emotion Copilot's clustering figure, and linear probes
of a pretrained ETE's features beside band power (``eegpt probe``).

An embeddings file (``.npz``) holds, for every window: ``features`` [W, E, D] per-electrode ETE
summary features (zeros at padded electrodes; standardised per electrode when taken from a
fine-tuned model), ``mask`` [W, E], ``electrodes`` [W, E] (vocabulary ids), ``mean`` [W, D] (mean over
the window's electrodes), ``pooled`` [W, D] (the graph's pooled vector; fine-tuned models only),
``labels`` (class index), ``label_names``, ``subjects``, ``tasks``, ``datasets`` and ``splits``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax
import numpy as np

from eegpt.electrodes import ID
from eegpt.pipeline import graph_batches
from eegpt.errors import EEGInputError, atomic_write
from eegpt.store import open_stores


def pretrained_encoder(ete_dir, batch_size: int = 32):
    """``features(store, split) -> [W, E, D]``: a pretraining run's ETE, loaded once, over a store."""
    from eegpt.finetune import load_ete
    from eegpt.model import encode

    graphdef, params, cfg = load_ete(ete_dir)
    layout = "flat" if cfg.mode == "electrode" else "padded"
    fn = jax.jit(lambda p, b: encode(graphdef, p, b))

    def features(store, split):
        feats = []
        for b in graph_batches([store], split, batch_size, tokens=cfg.tokens(), epochs=1, drop_remainder=False,
                               shuffle=False, layout=layout, shard_index=0, shard_count=1):
            feats.append(np.asarray(fn(params, b))[b["real_B"]])
        return np.concatenate(feats)

    return features


def embed(model_dir, stores, out, split: str | None = None, features: dict | None = None) -> dict:
    """Write the embeddings of every window of ``stores`` (or of ``split``) to ``out`` (.npz);
    ``features``: a fine-tuned model's frozen ETE features of the stores, already encoded."""
    model_dir, out = Path(model_dir), Path(out)
    stores = open_stores(stores)
    finetuned = None
    if (model_dir / "config.json").exists() and (model_dir / "checkpoints").is_dir():
        pass  # a pretraining workdir: the ETE's own features
    else:
        from eegpt.model import load
        from eegpt.model import model_dir as find_model

        try:
            found = find_model(model_dir)
        except EEGInputError:
            raise EEGInputError(f"{model_dir}: neither a model directory nor a pretraining workdir; "
                                "run eegpt pretrain or eegpt finetune") from None
        finetuned = load(found)
    encoder = pretrained_encoder(model_dir) if finetuned is None else None
    parts = []
    for s in stores:
        pos = s.indices(split)
        if len(pos) == 0:
            raise EEGInputError(f"{s.path}: no windows in split {split!r}")
        if finetuned is not None:
            r = finetuned.run(s, split, cached=(features or {}).get(s.name))
            feats, pooled = r["features"], r["pooled"]
        else:
            feats, pooled = encoder(s, split), None
        ids = np.zeros(feats.shape[:2], np.int32)
        mask = np.zeros(feats.shape[:2], bool)
        for j, m in enumerate(s.montage_of[pos]):
            names = s.montages[m]
            ids[j, : len(names)] = [ID[n] for n in names]
            mask[j, : len(names)] = True
        parts.append({"features": feats, "mask": mask, "electrodes": ids, "pooled": pooled,
                      "labels": s.labels[pos], "label_names": np.asarray(s.classes)[s.labels[pos]],
                      "subjects": s.subject_of[pos], "tasks": np.full(len(pos), s.task),
                      "datasets": np.full(len(pos), s.name), "splits": s.split_of[pos]})
    e_max = max(p["features"].shape[1] for p in parts)

    def pad(a):
        return np.pad(a, [(0, 0), (0, e_max - a.shape[1])] + [(0, 0)] * (a.ndim - 2))

    arrays = {"features": np.concatenate([pad(p["features"]) for p in parts]).astype(np.float32),
              "mask": np.concatenate([pad(p["mask"]) for p in parts]),
              "electrodes": np.concatenate([pad(p["electrodes"]) for p in parts])}
    counts = np.maximum(arrays["mask"].sum(1, keepdims=True), 1)
    arrays["mean"] = (arrays["features"] * arrays["mask"][..., None]).sum(1) / counts
    if finetuned is not None:
        arrays["pooled"] = np.concatenate([p["pooled"] for p in parts]).astype(np.float32)
    for key in ("labels", "label_names", "subjects", "tasks", "datasets", "splits"):
        arrays[key] = np.concatenate([p[key] for p in parts])
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda t: np.savez_compressed(t, **arrays))
    return {"windows": int(len(arrays["labels"])), "arrays": sorted(arrays)}


PROBES = ("ete", "ete_mean", "band_power", "ete+band_power")


def probe(ete_dir, stores, folds: int = 5, seed: int = 0) -> dict:
    """Linear probes of what a pretrained ETE's features hold, beside band power.

    For each store, over all its windows: logistic regression on (a) ``ete`` the concatenated
    per-electrode ETE features, (b) ``ete_mean`` their mean over electrodes, (c) ``band_power``
    the five log band powers per electrode (the classical baseline's features), (d)
    ``ete+band_power`` both. Cross-validated with folds grouped by subject (every score is on
    subjects the probe never saw); C is chosen inside each training fold by a grouped 3-fold
    search, so the test subjects choose nothing. Returns ``{store: {probe: {mean, std, folds}}}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from eegpt.baseline import GRID, store_arrays
    from eegpt.features import band_power

    encoder = pretrained_encoder(ete_dir)
    out = {}
    for s in open_stores(stores):
        x, y, subjects = store_arrays(s)
        n_groups = len(np.unique(subjects))
        if n_groups < 3:
            raise EEGInputError(f"{s.path}: {n_groups} subject(s); a probe grouped by subject needs at least 3")
        ete = encoder(s, None)
        feats = {"ete": ete.reshape(len(ete), -1), "ete_mean": ete.mean(1), "band_power": band_power(x, s.index["sfreq"])}
        feats["ete+band_power"] = np.concatenate([feats["ete"], feats["band_power"]], 1)
        outer = GroupKFold(min(folds, n_groups))
        res = {}
        for name in PROBES:
            scores = []
            for tr, te in outer.split(feats[name], y, subjects):
                inner = GroupKFold(min(3, len(np.unique(subjects[tr]))))
                search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(
                    max_iter=3000, class_weight="balanced")), GRID["band_power"], scoring="balanced_accuracy",
                    cv=inner.split(feats[name][tr], y[tr], subjects[tr]))
                search.fit(feats[name][tr], y[tr])
                scores.append(float(balanced_accuracy_score(y[te], search.predict(feats[name][te]))))
            res[name] = {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "folds": scores}
        out[s.name] = {"task": s.task, "windows": int(len(y)), "subjects": int(n_groups), "chance": 1 / len(s.classes),
                       **res}
    return out


def print_probes(r: dict) -> None:
    """``eegpt probe``'s table: one row per store, mean ± std over folds per feature set."""
    print(f"{'dataset':<22} {'task':<4} {'windows':>7} {'subj.':>5}" + "".join(f"{n:>18}" for n in PROBES) + f"{'chance':>8}")
    for name, v in r.items():
        print(f"{name:<22} {v['task']:<4} {v['windows']:>7} {v['subjects']:>5}"
              + "".join(f"{v[n]['mean']:>11.3f} ± {v[n]['std']:.3f}" for n in PROBES) + f"{v['chance']:>8.2f}")


def clustering_scores(x, labels, seed: int = 0) -> dict:
    """K-means and spectral clustering (k = number of classes) against the labels (adjusted Rand
    index), and the silhouette of the true labels, on standardised embeddings."""
    from sklearn.cluster import KMeans, SpectralClustering
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(x)
    k = len(np.unique(labels))
    if k < 2:
        return {"k": k, "kmeans_ari": float("nan"), "spectral_ari": float("nan"), "silhouette": float("nan")}
    km = KMeans(k, n_init=10, random_state=seed).fit_predict(x)
    with warnings.catch_warnings(record=True) as caught:  # a disconnected neighbour graph is reported, not fatal
        warnings.simplefilter("always")
        sp = SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=min(10, len(x) - 1),
                                random_state=seed, assign_labels="cluster_qr").fit_predict(x)
    return {"k": k, "kmeans_ari": float(adjusted_rand_score(labels, km)),
            "spectral_ari": float(adjusted_rand_score(labels, sp)), "silhouette": float(silhouette_score(x, labels)),
            "spectral_graph_connected": not any("not fully connected" in str(w.message) for w in caught)}


def tsne(path, out, key: str = "auto", marker: str = "task", perplexity: float = 30.0,
         max_points: int = 3000, seed: int = 0) -> dict:
    """t-SNE of an embeddings file, coloured by class and marked by task (or subject), with
    clustering scores per task and across tasks; writes ``out`` (.png) and ``out`` .json."""
    path, out = Path(path), Path(out)
    if not path.exists():
        raise EEGInputError(f"{path}: no such embeddings file; make one with eegpt embed")
    try:
        data = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as err:
        raise EEGInputError(f"{path}: not an embeddings .npz ({err})") from None
    if key == "auto":
        key = "pooled" if "pooled" in data else "mean"
    if key not in data or data[key].ndim != 2:
        raise EEGInputError(f"{path}: no per-window array {key!r}; choose from "
                            f"{', '.join(k for k in data if data[k].ndim == 2 and k not in ('mask', 'electrodes'))}")
    x = data[key]
    if not np.isfinite(x).all():
        raise EEGInputError(f"{path}: {key} holds NaN or Inf")
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(x))[:max_points])
    x, tasks = x[keep], data["tasks"][keep]
    names, labels, groups = data["label_names"][keep], data["labels"][keep], data[marker + "s"][keep]
    if len(x) < 5:
        raise EEGInputError(f"{path}: {len(x)} windows; t-SNE needs at least 5")

    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x)
    if z.shape[1] > 50:
        z = PCA(50, random_state=seed).fit_transform(z)
    xy = TSNE(2, perplexity=min(perplexity, (len(z) - 1) / 3), init="pca", random_state=seed).fit_transform(z)

    scores = {t: {**clustering_scores(x[tasks == t], labels[tasks == t], seed), "n": int((tasks == t).sum())}
              for t in np.unique(tasks)}
    if len(np.unique(tasks)) > 1:
        scores["tasks"] = {**clustering_scores(x, tasks, seed), "n": int(len(x))}
    _plot(xy, tasks, names, groups, marker, out, f"t-SNE of {key} embeddings ({path.name})")
    result = {"points": int(len(x)), "key": key, "marker": marker, "clustering": scores,
              "json": str(out.with_suffix(".json"))}
    atomic_write(out.with_suffix(".json"), lambda t: t.write_text(json.dumps(result, indent=2) + "\n"))
    return result


def _plot(xy, tasks, names, groups, marker, out, title) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = "os^DvP*Xph<>"
    group_ids = {g: shapes[i % len(shapes)] for i, g in enumerate(np.unique(groups))}
    classes = sorted({(t, n) for t, n in zip(tasks, names)})
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(8, 6.5))
    for ci, (t, n) in enumerate(classes):
        for g, shape in group_ids.items():
            sel = (tasks == t) & (names == n) & (groups == g)
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=9, marker=shape, color=cmap(ci % 20), alpha=0.75,
                           linewidths=0, label=f"{t}: {n}" if g == next(iter(groups[(tasks == t) & (names == n)])) else None)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title + f"\ncolour: class; marker: {marker}", fontsize=9)
    ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda t: fig.savefig(t, dpi=120, format="png"))
    plt.close(fig)
