"""The classical baselines results are shown beside, each a scikit-learn pipeline fitted on the
training windows' raw arrays and returning class probabilities for the scored ones:

- ``band_power``: log power per electrode in the five classical bands + logistic regression
  (every task; the synthetic and EEGMAT reference);
- ``erp``: the window's time course averaged in 50-ms bins per electrode + logistic regression
  (stimulus category: N170, P300);
- ``csp_lda``: 8–30 Hz band-pass, MNE's common spatial patterns (log variance of 4 components) and
  linear discriminant analysis (motor imagery);
- ``riemann``: each window's spatial covariance (OAS shrinkage), its tangent-space vector at the
  training windows' Riemannian mean and a logistic regression — pyriemann's "TS + LR", as MOABB's
  pipelines build it; the band (broadband, or 8–30 Hz as for motor imagery) is a setting chosen
  like C (every task).

and the specialist networks a user would train instead (the optional ``peers`` extra:
braindecode and torch's CPU build; the project's own code stays JAX):

- ``eegnet``: braindecode's EEGNet (v4), AdamW at 1e-3;
- ``shallow_fbcsp``: braindecode's ShallowFBCSPNet, AdamW at 6.25e-4 (braindecode's own settings);

each trained on the same training windows (scaled to unit variance, class-weighted cross-entropy,
batch 64, cosine schedule over ``SPECIALIST_EPOCHS`` epochs).

Peers get the model's selection: where the protocol has validation subjects, the logistic
regression's C (and CSP's number of components) is chosen on them, as the model's checkpoint is
(``GRID``), and a network keeps the epoch with the best validation balanced accuracy; without them
the defaults stand (C 0.1, 4 components, the last epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from eegpt.features import band_power, erp_bins

class _Features(BaseEstimator, TransformerMixin):
    def __init__(self, fn=band_power, sfreq: float = 256.0):
        self.fn, self.sfreq = fn, sfreq

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return self.fn(x, self.sfreq)


GRID = {"band_power": {"logisticregression__C": [0.001, 0.01, 0.1, 1.0, 10.0]},
        "erp": {"logisticregression__C": [0.001, 0.01, 0.1, 1.0, 10.0]},
        "csp_lda": {"csp__n_components": [2, 4, 6, 8]},
        "riemann": {"covariances__band": ["broadband", "8-30"], "logisticregression__C": [0.001, 0.01, 0.1, 1.0, 10.0]}}


def _logistic(c: float = 0.1):
    return LogisticRegression(max_iter=2000, C=c, class_weight="balanced")


def select_on_val(make_model, grid: dict, x_tr, y_tr, x_val, y_val, groups_tr=None):
    """Fit ``make_model()`` with every setting of ``grid`` on the training windows and keep the one
    with the best balanced accuracy on the validation windows (the first, on ties). Without
    validation windows, the setting is chosen by cross-validation grouped by ``groups_tr`` (the
    training windows' subjects, up to 5 folds) and refitted on every training window; without
    groups either, the defaults. Returns (fitted model, chosen settings)."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GridSearchCV, ParameterGrid

    if not grid:
        return make_model().fit(x_tr, y_tr), {}
    first = make_model()
    if isinstance(first, Pipeline) and isinstance(first.steps[0][1], _Features):
        # The features learn nothing from the windows: computed once, not once per setting (the
        # same fits; CSP's band-pass over every training window was most of the peers' time)
        name, features = first.steps[0]
        x_val = x_val if x_val is None or len(y_val) == 0 else features.transform(x_val)
        rest, chosen = select_on_val(lambda: Pipeline(make_model().steps[1:]), grid, features.transform(x_tr), y_tr,
                                     x_val, y_val, groups_tr)
        return Pipeline([(name, features)] + rest.steps), chosen
    if x_val is None or len(y_val) == 0:
        folds = inner_folds(groups_tr)
        if folds is None:
            return make_model().fit(x_tr, y_tr), {}
        search = GridSearchCV(make_model(), grid, scoring="balanced_accuracy", cv=folds, error_score="raise")
        search.fit(x_tr, y_tr, groups=groups_tr)
        return search.best_estimator_, search.best_params_
    best = None
    for params in ParameterGrid(grid):
        model = make_model().set_params(**params).fit(x_tr, y_tr)
        score = balanced_accuracy_score(y_val, model.predict(x_val))
        if best is None or score > best[0]:
            best = (score, model, params)
    return best[1], best[2]


def inner_folds(groups):
    """Cross-validation over the training subjects for a protocol without validation subjects:
    ``GroupKFold`` with up to 5 folds, or None with fewer than 3 subjects (too few to hold any out)."""
    from sklearn.model_selection import GroupKFold

    n = 0 if groups is None else len(np.unique(groups))
    return GroupKFold(min(5, n)) if n >= 3 else None


def _band_pass(x, sfreq):
    """8–30 Hz as ``mne.filter.filter_data`` does it (its default FIR design and edge padding), through
    the preprocessing's FFT filter: equal to float32 precision (tested), a tenth of the time."""
    from eegpt.preprocess import Preprocess, filter_resample

    band = Preprocess(l_freq=8.0, h_freq=30.0, line_freq=None, sfreq=None)
    return filter_resample(x.reshape(-1, x.shape[-1]), sfreq, band).reshape(x.shape).astype(np.float64)


class _Covariances(BaseEstimator, TransformerMixin):
    """Each window's spatial covariance [W, E, E], OAS-shrunk (pyriemann), of the broadband window
    or of its 8–30 Hz band (``band``: a setting chosen on validation)."""
    def __init__(self, sfreq: float = 256.0, band: str = "broadband"):
        self.sfreq, self.band = sfreq, band

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        from pyriemann.estimation import Covariances

        if self.band not in ("broadband", "8-30"):
            raise ValueError(f"band {self.band!r}: broadband or 8-30")
        x = _band_pass(x, self.sfreq) if self.band == "8-30" else np.asarray(x, np.float64)
        return Covariances(estimator="oas").transform(x)


def make(name: str, sfreq: float):
    """An unfitted baseline pipeline on raw windows ``[W, E, S]``."""
    if name == "band_power":
        return make_pipeline(_Features(band_power, sfreq), StandardScaler(), _logistic())
    if name == "erp":
        return make_pipeline(_Features(erp_bins, sfreq), StandardScaler(), _logistic())
    if name == "csp_lda":
        from mne.decoding import CSP

        return make_pipeline(_Features(_band_pass, sfreq), CSP(n_components=4, log=True), LinearDiscriminantAnalysis())
    if name == "riemann":
        from pyriemann.tangentspace import TangentSpace

        return Pipeline([("covariances", _Covariances(sfreq)), ("tangentspace", TangentSpace(metric="riemann")),
                         ("logisticregression", _logistic())])
    raise KeyError(f"unknown baseline {name!r}; choose band_power, erp, csp_lda, riemann, {', '.join(SPECIALISTS)}")


def classifier():
    """Standardised features -> class-balanced logistic regression (for precomputed features)."""
    return make_pipeline(StandardScaler(), _logistic())


@dataclass(frozen=True)
class Specialist:
    """How one of braindecode's networks is trained as a peer: its class, AdamW's learning rate, the
    rate its windows are resampled to (None: as stored), and the epochs (the one kept chosen on the
    validation windows when there are any)."""

    model: str
    lr: float
    sfreq: float | None
    epochs: int


# EEGNet at its authors' 128 Hz (its 64-sample temporal kernel is then the paper's half second),
# lr 3e-3 and 80 epochs: with braindecode's sizes at our 256 Hz, lr 1e-3 and 40 epochs it had not
# fitted the synthetic ER windows (training loss 0.91) and stayed near chance on held-out subjects
# (experiments/specialist_recipe.py, docs/guide/benchmarks.md). ShallowFBCSPNet runs at the rate it was designed for
# (250 Hz) with braindecode's learning rate: it fits its training windows in 40 epochs, and a 4x
# learning rate over 80 epochs did not score higher.
SPECIALISTS = {"eegnet": Specialist("EEGNetv4", 3e-3, 128.0, 80),
               "shallow_fbcsp": Specialist("ShallowFBCSPNet", 0.0625 * 0.01, None, 40)}


def recipes(names) -> dict:
    """How each network among the peers ``names`` is trained, as JSON: kept beside its scores, so a
    score made by another recipe is made again rather than reused."""
    from dataclasses import asdict

    return {n: asdict(SPECIALISTS[n]) for n in names if n in SPECIALISTS}


def specialists_installed() -> bool:
    """Whether the ``peers`` extra (braindecode, torch) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "braindecode", "skorch"))


def train_specialist(spec: Specialist, sfreq, x_tr, y_tr, x_val, y_val, x_te, n_classes, seed):
    """Train braindecode's network as ``spec`` says on the training windows (sampled at ``sfreq``);
    class probabilities of ``x_te``, the epoch kept, and the training history (per epoch: training
    loss, validation balanced accuracy)."""
    import torch
    import braindecode.models
    from braindecode import EEGClassifier
    from skorch.callbacks import EarlyStopping, EpochScoring, LRScheduler
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    epochs = spec.epochs
    if spec.sfreq is not None and sfreq > spec.sfreq:
        # MNE's FFT resampling, as a braindecode user would resample; the windows are stored already
        # band-passed, so there is nothing for preprocess.filter_resample's filters to add
        import mne

        down = sfreq / spec.sfreq
        x_tr, x_val, x_te = [None if x is None else mne.filter.resample(x.astype(np.float64), down=down, verbose=False)
                             for x in (x_tr, x_val, x_te)]
    present = np.unique(y_tr)  # train on the classes present (eegmmidb's imagery runs: 2 of 4)
    code = {c: i for i, c in enumerate(present)}
    scale = 1.0 / max(float(x_tr.std()), 1e-12)  # unit variance, one factor for every window
    as_input = lambda x: (x * scale).astype(np.float32)  # noqa: E731
    counts = np.bincount([code[c] for c in y_tr], minlength=len(present))
    weight = torch.tensor(len(y_tr) / (len(present) * counts), dtype=torch.float32)  # class-balanced
    torch.manual_seed(seed)
    # both networks give logits (ShallowFBCSPNet's log-softmax switched off): cross-entropy, softmax
    extra = {"final_conv_length": "auto", "add_log_softmax": False} if spec.model == "ShallowFBCSPNet" else {}
    module = getattr(braindecode.models, spec.model)(n_chans=x_tr.shape[1], n_outputs=len(present),
                                                     n_times=x_tr.shape[2], **extra)
    callbacks = [("lr", LRScheduler("CosineAnnealingLR", T_max=max(epochs - 1, 1)))]
    split = None
    has_val = x_val is not None and len(y_val) and np.isin(y_val, present).any()
    if has_val:
        keep = np.isin(y_val, present)
        split = predefined_split(Dataset(as_input(x_val[keep]), np.asarray([code[c] for c in y_val[keep]])))
        callbacks += [("valid_bacc", EpochScoring("balanced_accuracy", lower_is_better=False, on_train=False,
                                                       name="valid_bacc")),
                      ("best", EarlyStopping(monitor="valid_bacc", lower_is_better=False, patience=epochs,
                                             threshold=0.0, load_best=True))]
    net = EEGClassifier(module, criterion=torch.nn.CrossEntropyLoss, criterion__weight=weight,
                        optimizer=torch.optim.AdamW, optimizer__lr=spec.lr, optimizer__weight_decay=0.0,
                        batch_size=64, max_epochs=epochs, train_split=split, callbacks=callbacks,
                        iterator_train__drop_last=len(y_tr) > 64, device="cpu", verbose=0)
    net.fit(as_input(x_tr), np.asarray([code[c] for c in y_tr]))
    probs = np.zeros((len(x_te), n_classes))
    probs[:, present] = net.predict_proba(as_input(x_te))
    chosen = {"epoch": int(np.argmax(net.history[:, "valid_bacc"])) + 1} if has_val else {"epoch": epochs}
    history = {"train_loss": [float(v) for v in net.history[:, "train_loss"]],
               "valid_bacc": [float(v) for v in net.history[:, "valid_bacc"]] if has_val else []}
    return probs, chosen, history


def fit_predict(name: str, store, train_positions, test_positions, val_positions=None, seed: int = 0,
                specialist: Specialist | None = None):
    """Fit peer ``name`` on a store's ``train_positions`` (its setting chosen on ``val_positions``
    when there are any); returns (probabilities, labels, chosen settings) on ``test_positions``.
    ``seed`` and ``specialist`` (a recipe other than ``SPECIALISTS[name]``) concern the networks only."""
    x_tr, y_tr, groups_tr = store_arrays(store, train_positions)
    x_te, y_te, _ = store_arrays(store, test_positions)
    x_val, y_val = (store_arrays(store, val_positions)[:2] if val_positions is not None and len(val_positions)
                    else (None, None))
    if name in SPECIALISTS:
        probs, chosen, _ = train_specialist(specialist or SPECIALISTS[name], store.index["sfreq"], x_tr, y_tr,
                                            x_val, y_val, x_te, len(store.classes), seed)
        return probs, y_te, chosen
    import mne

    with mne.utils.use_log_level("error"):  # CSP reports its rank estimation on stdout
        model, chosen = select_on_val(lambda: make(name, store.index["sfreq"]), GRID.get(name, {}),
                                      x_tr, y_tr, x_val, y_val, groups_tr)
    probs = np.zeros((len(y_te), len(store.classes)))
    probs[:, model.classes_] = model.predict_proba(x_te)
    return probs, y_te, chosen


def store_arrays(store, positions=None):
    """All windows of a store (or those at ``positions``) with one montage: (x [W, E, S], y, subjects)."""
    positions = np.arange(len(store)) if positions is None else np.asarray(positions)
    samples = [store[i] for i in positions]
    montages = {tuple(s.electrodes) for s in samples}
    if len(montages) > 1:
        raise ValueError(f"{store.path}: {len(montages)} montages; the classical baselines need one")
    return (np.stack([s.x for s in samples]), np.asarray([s.label for s in samples]),
            np.asarray([s.subject for s in samples]))
