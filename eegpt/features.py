"""The classical views of EEG, one place for each: what the peers read and what the model's linear
start and graph read beside the ETE.

Two forms of the same views:

- on windows ``[W, E, S]`` (numpy, what the scikit-learn peers in ``eegpt.baseline`` read):
  ``band_power`` (Welch log power in the five ``BANDS``), ``erp_bins`` (the time course in bins);
- on tokens, per electrode (jax, inside the model's jitted encoding, ``eegpt.model.encode``):
  ``band_log_power`` (the same Welch estimate from the tokens), ``relative`` (each band's share),
  ``token_erp_bins`` (the first token in ``ERP_BINS`` bins) and ``laplacian`` (Hjorth's surface
  Laplacian, whose spectral views are "lap" and "laprel").

``NODES`` names the per-electrode views a model can read, in column order; ``node_views`` parses a
``nodes`` string ("ete+bands") and ``node_width`` gives its width.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from eegpt.electrodes import positions
from eegpt.errors import EEGInputError

BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0),
         "gamma": (30.0, 45.0)}


def band_power(x_WxExS: np.ndarray, sfreq: float) -> np.ndarray:
    """Log band power of each electrode in the five classical bands: [W, E * 5]."""
    nper = int(min(x_WxExS.shape[-1], sfreq))  # 1-s Welch segments (or the whole window)
    freqs, psd = scipy.signal.welch(x_WxExS, fs=sfreq, nperseg=nper, axis=-1)
    feats = [np.log(psd[..., (freqs >= lo) & (freqs < hi)].mean(-1) + 1e-12) for lo, hi in BANDS.values()]
    return np.stack(feats, axis=-1).reshape(len(x_WxExS), -1)


def erp_bins(x_WxExS: np.ndarray, sfreq: float, bin_s: float = 0.05) -> np.ndarray:
    """The time course of each electrode averaged in ``bin_s`` bins: [W, E * bins]."""
    width = max(1, int(round(bin_s * sfreq)))
    n = x_WxExS.shape[-1] // width
    return x_WxExS[..., : n * width].reshape(*x_WxExS.shape[:-1], n, width).mean(-1).reshape(len(x_WxExS), -1)


NODES = ("ete", "bands", "rel", "erp", "lap", "laprel")  # the per-electrode views, in column order
ERP_BINS = 16                     # the first token's time course in 16 bins (62.5 ms at 256 Hz)
SPECTRAL = frozenset({"bands", "rel", "lap", "laprel"})  # the views computed from band powers (need one rate)
LAPLACIAN_K = 4                   # Hjorth's surface Laplacian: each electrode minus its 4 nearest


def node_views(nodes: str) -> list[str]:
    """The views of a ``nodes`` string ("ete+bands"), checked, in column order."""
    views = nodes.split("+")
    if not views or any(v not in NODES for v in views) or len(set(views)) != len(views):
        raise EEGInputError(f"--nodes {nodes}: join views of {', '.join(NODES)} with '+' (e.g. ete+bands)")
    return [v for v in NODES if v in views]


def node_width(nodes: str, d_model: int) -> int:
    """Feature width per electrode: the ETE's summary, five log band powers and their relative
    shares, the ERP bins, the same two spectral views of the Laplacian."""
    size = {"ete": d_model, "bands": len(BANDS), "rel": len(BANDS), "erp": ERP_BINS, "lap": len(BANDS),
            "laprel": len(BANDS)}
    return sum(size[v] for v in node_views(nodes))


def token_erp_bins(tokens_XxNxP):
    """The first token's time course averaged in ``ERP_BINS`` bins: ``[X, N, P] -> [X, 16]`` (what
    the ERP baseline reads, for stimulus-locked windows)."""
    first = tokens_XxNxP[:, 0].astype(jnp.float32)
    return first.reshape(first.shape[0], ERP_BINS, -1).mean(-1)


def laplacian(tokens_BxExNxP, electrodes_BxE, mask_BxE):
    """Each electrode's signal minus the mean of its ``LAPLACIAN_K`` nearest electrodes of the same
    recording (Hjorth's surface Laplacian, by the vocabulary's 3-D positions): the local contrast
    that motor imagery's lateralised rhythms show and volume conduction blurs in the raw signal —
    what CSP finds with spatial filters, kept per electrode. An electrode without neighbours (a
    one-electrode montage) keeps its signal."""
    b, e = mask_BxE.shape
    pos = jnp.asarray(positions())[electrodes_BxE]
    dist = jnp.square(pos[:, :, None] - pos[:, None]).sum(-1)
    other = mask_BxE[:, None, :] & ~jnp.eye(e, dtype=bool)[None]
    k = min(LAPLACIAN_K, max(e - 1, 1))
    _, nbr = jax.lax.top_k(-jnp.where(other, dist, jnp.inf), k)  # [B, E, k]
    real = jnp.take_along_axis(other, nbr, -1).astype(jnp.float32)
    # the neighbours' mean as a [B, E, E] averaging matrix: one matmul, not a gather (3x faster on CPU)
    weights = (jax.nn.one_hot(nbr, e) * real[..., None]).sum(2) / jnp.maximum(real.sum(-1), 1.0)[..., None]
    x = tokens_BxExNxP.astype(jnp.float32)
    return x - jnp.einsum("bef,bfnp->benp", weights, x)


def band_log_power(tokens_XxNxP, n_valid_X, sfreq: float, contiguous: bool = True):
    """Log power of each sequence in the five classical bands (``BANDS``) by Welch's
    method, as the band-power baseline reads it (scipy's ``welch`` with 1-s segments): Hann-tapered
    periodograms of its real tokens and, when the tokens are ``contiguous`` (no token overlap),
    of the half-overlapping segments between neighbours, averaged. ``[X, N, P] -> [X, 5]``.

    Why the taper: a window's strong slow activity (sleep's delta) leaks through an untapered
    periodogram's sidelobes into the faster bands; why the overlap: the taper discards the
    segments' edges, which the half-shifted segments recover."""
    p = tokens_XxNxP.shape[-1]
    x = tokens_XxNxP.astype(jnp.float32)
    taper = jnp.asarray(np.hanning(p + 1)[:p], jnp.float32)  # scipy's periodic Hann
    valid = jnp.arange(x.shape[-2])[None] < n_valid_X[:, None]
    segments, weights = [x], [valid]
    if contiguous and x.shape[-2] > 1:
        h = p // 2
        segments.append(jnp.concatenate([x[:, :-1, h:], x[:, 1:, : p - h]], -1))
        weights.append(jnp.arange(x.shape[-2] - 1)[None] + 1 < n_valid_X[:, None])
    seg = jnp.concatenate(segments, 1)
    w = jnp.concatenate(weights, 1)[..., None].astype(jnp.float32)
    seg = (seg - seg.mean(-1, keepdims=True)) * taper  # scipy detrends each segment by its mean
    power = jnp.square(jnp.abs(jnp.fft.rfft(seg, axis=-1)))
    mean = jnp.sum(power * w, axis=-2) / jnp.maximum(w.sum(-2), 1.0)
    freqs = np.fft.rfftfreq(p, 1.0 / sfreq)
    # a band narrower than the bins of a short token (64 samples: 4 Hz) takes the bin nearest its centre
    cols = [np.flatnonzero((freqs >= lo) & (freqs < hi)) if ((freqs >= lo) & (freqs < hi)).any()
            else np.array([np.abs(freqs - (lo + hi) / 2).argmin()]) for lo, hi in BANDS.values()]
    return jnp.stack([jnp.log(mean[:, c].mean(-1) + 1e-8) for c in cols], axis=-1)


def relative(log_power_XxB):
    """Each band's share of the electrode's total power, in logs: what stays when a subject's or an
    electrode's overall gain (skull, impedance, amplifier) changes."""
    return log_power_XxB - jax.nn.logsumexp(log_power_XxB, axis=-1, keepdims=True)


def euclidean_alignment(store) -> dict:
    """Each subject's Euclidean alignment (He & Wu, 2019): ``{subject: W [E, E]}`` with
    ``W = c R^-1/2``, where ``R`` is the mean spatial covariance of all the subject's windows
    (labelled or not, every split) and ``c`` the root of its mean variance, so that an aligned
    subject's windows have the same mean covariance shape (the identity) at their own power.

    Transductive: a scored subject's unlabelled windows set its own alignment. Subjects, not
    recordings: where each recording holds one class (EEGMAT), a recording's statistics would
    carry its label."""
    out = {}
    for subject in np.unique(store.subject_of):
        positions = np.flatnonzero(store.subject_of == subject)
        if len({int(store.montage_of[i]) for i in positions}) > 1:
            raise EEGInputError(f"{store.path}: subject {subject} has windows of several montages; Euclidean "
                                "alignment needs one montage per subject")
        cov = np.mean([np.cov(store[i].x) for i in positions], axis=0)
        values, vectors = np.linalg.eigh(cov)
        values = np.maximum(values, values.max() * 1e-6)  # a rank-deficient montage (average reference)
        out[str(subject)] = (np.sqrt(values.mean()) * (vectors / np.sqrt(values)) @ vectors.T).astype(np.float32)
    return out
