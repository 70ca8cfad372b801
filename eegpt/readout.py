"""The linear start: each head's per-electrode readout fitted as a logistic regression on classical
views (and, when asked, the ETE's features) before the graph trains, so fine-tuning starts where the
classical peers are and has to beat it on validation to be kept."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from eegpt.baseline import GRID, inner_folds, select_on_val


class Columns(BaseEstimator, TransformerMixin):
    """The columns ``keep`` of a design matrix (all with None): a view combination as a setting
    ``select_on_val`` can choose."""
    def __init__(self, keep=None):
        self.keep = keep

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return x if self.keep is None else x[:, self.keep]


def choose_views(x_train, y_train, x_val, y_val, groups, views: list[tuple[str, int]], electrodes: int,
                 search: str = "combinations") -> tuple:
    """The views and C of a logistic regression on a design of ``electrodes`` blocks of the views'
    columns (``views`` ``[(name, width)]`` in order; columns already scaled), chosen on the
    validation windows by balanced accuracy (``search``: "combinations", every non-empty
    combination of the views; "each", each view alone and all together; "combinations+ete", every
    combination of the views but the ETE's, then the best of them with and without the ETE, so the
    encoder is read only where it beats the best classical choice). Without validation windows
    (``x_val`` None) they are chosen as the peers' settings are (``select_on_val``): by
    cross-validation over the training subjects ``groups``, each view alone or all, else all views
    at C 0.1. Returns (the regression fitted on the chosen columns, the chosen views' indices, those
    columns within one block, C, where they were chosen)."""
    import itertools

    width = sum(w for _, w in views)
    starts = np.cumsum([0] + [w for _, w in views])
    each = [[i] for i in range(len(views))] + ([list(range(len(views)))] if len(views) > 1 else [])
    every = [list(c) for r in range(1, len(views) + 1) for c in itertools.combinations(range(len(views)), r)]
    ete = next((i for i, (v, _) in enumerate(views) if v == "ete"), None)
    has_val = x_val is not None and len(y_val) > 0

    def view_cols(cand):
        return np.concatenate([np.arange(starts[i], starts[i + 1]) for i in cand])

    def fit(candidates):
        """The candidate views and C with the best validation score (the first on ties)."""
        keeps = [(np.arange(electrodes)[:, None] * width + view_cols(cand)[None]).reshape(-1) for cand in candidates]
        pipe, picked = select_on_val(
            lambda: Pipeline([("columns", Columns()), ("logisticregression", LogisticRegression(
                max_iter=3000, C=0.1, class_weight="balanced"))]),
            {"columns__keep": keeps, **GRID["band_power"]}, x_train, y_train, x_val if has_val else None,
            y_val if has_val else None, groups)
        cand = candidates[next(i for i, k in enumerate(keeps) if np.array_equal(k, picked["columns__keep"]))] \
            if picked else list(range(len(views)))
        return pipe, picked, cand

    # the views are a setting like C, chosen the way the peers' settings are; without validation
    # windows each candidate costs a cross-validation, so fewer candidates
    if has_val and search == "combinations+ete" and ete is not None:
        _, _, best = fit([c for c in every if ete not in c])
        pipe, picked, cand = fit([best, sorted(best + [ete])])
    else:
        pipe, picked, cand = fit(every if has_val and search != "each" else each)
    folds = None if has_val else inner_folds(groups)
    where = "val" if has_val else f"{folds.get_n_splits()}-fold cross-validation over training subjects" if folds \
        else "defaults"
    return pipe[-1], cand, view_cols(cand), picked.get("logisticregression__C", 0.1), where


def linear_readout(teg_params: dict, heads: list[str], stores: list, cache: dict, norm: dict,
                   train_pos, views: list[tuple[str, int]], search: str = "combinations") -> tuple[dict, dict]:
    """Each head's per-electrode readout fitted as a logistic regression on its training windows'
    features — the readout's columns, ``views`` ``[(name, width)]`` in order (the band powers, the
    ERP bins, ...), each column scaled to unit variance over the head's training windows as
    ``StandardScaler`` does for the peers — with the views and C chosen on the validation subjects
    (:func:`choose_views`; ``search`` says which combinations), as a researcher would pick the
    features for a task. The graph's own output starts at zero, so the model starts as that linear
    model and fine-tuning has to improve on it. Returns ``teg_params`` updated, and per head the
    views and C chosen."""
    import jax.numpy as jnp

    from teg.model import VOCAB_SIZE as VOCAB

    width = sum(w for _, w in views)
    chosen = {}
    mean, std = np.asarray(norm["mean"]), np.asarray(norm["std"])
    for name, s, pos in zip(heads, stores, train_pos):
        c = cache[name]
        used = np.unique(c["electrodes"][pos][c["mask"][pos]])

        def design(rows):
            ids, mask = c["electrodes"][rows], c["mask"][rows]
            x = ((c["features"][rows] - mean[ids]) / std[ids])[..., -width:]
            grid = np.zeros((len(rows), VOCAB, width), np.float32)
            np.add.at(grid, (np.repeat(np.arange(len(rows))[:, None], ids.shape[1], 1)[mask], ids[mask]), x[mask])
            return grid[:, used].reshape(len(rows), -1)

        val = s.indices("val")
        x_train = design(pos)
        # scaling only, no centring: an electrode missing from a window then still adds nothing
        scale = x_train.reshape(len(pos), len(used), width).std(0) + 1e-6  # [electrode, column]
        x_train = x_train / scale.reshape(-1)
        x_val = design(val) / scale.reshape(-1) if len(val) else None
        model, cand, cols, cc, where = choose_views(x_train, s.labels[pos], x_val, s.labels[val], s.subject_of[pos],
                                                    views, len(used), search)
        n_classes = len(s.classes)
        coef = np.zeros((n_classes, len(used) * len(cols)), np.float32)
        bias = np.full(n_classes, -10.0, np.float32)  # classes absent from training stay unlikely
        if len(model.classes_) == 2:  # binary: sklearn keeps one row, the second class's log-odds
            coef[model.classes_[1]], bias[model.classes_] = model.coef_[0], [0.0, model.intercept_[0]]
        else:
            coef[model.classes_], bias[model.classes_] = model.coef_, model.intercept_
        w = np.zeros((VOCAB, width, n_classes), np.float32)
        w[np.ix_(used, cols)] = coef.T.reshape(len(used), len(cols), n_classes) / scale[:, cols, None]
        teg_params["readout"][name] = jnp.asarray(w)
        out = teg_params["heads"][name]["out"]
        out["kernel"], out["bias"] = jnp.zeros_like(out["kernel"]), jnp.asarray(bias)
        chosen[name] = {"view": "+".join(views[i][0] for i in cand), "C": cc, "selected_on": where}
    return teg_params, chosen
