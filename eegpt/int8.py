"""The int8 codec of model weights: ``params-int8.npz`` written and read.

Every weight matrix is stored as int8 with one float32 scale per output channel (symmetric absmax,
quantized by ``qwix``); vectors (biases, norms, the graph's normalisation statistics) and small
matrices stay float32. Loading dequantizes to float32 (``qwix.dequantize``). It imports nothing of
the project but its error type, so the model and the copilot's decoder read int8 weights without
importing the command that writes them (:mod:`eegpt.quantize`).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from eegpt.errors import EEGInputError

INT8_FILE = "params-int8.npz"
MIN_SIZE = 4096  # smaller arrays stay float32: their scales would cost what int8 saves
KEEP_FLOAT = ("['norm']",)  # the graph input's per-electrode standardisation: statistics, not weights


def _paths(tree) -> tuple[list[str], list, object]:
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return [jax.tree_util.keystr(p) for p, _ in flat], [x for _, x in flat], treedef


def quantize_tree(tree) -> dict[str, np.ndarray]:
    """{path: array}: weight arrays as ``path#q`` (int8) and ``path#scale`` (float32): one scale
    for each index of every axis but the first (the input axis; for a per-electrode readout
    [E, F, C], one per feature and class)."""
    import qwix

    out = {}
    for key, x in zip(*_paths(tree)[:2]):
        x = np.asarray(x)
        if (x.ndim >= 2 and x.size >= MIN_SIZE and np.issubdtype(x.dtype, np.floating)
                and not key.startswith(KEEP_FLOAT)):
            q = qwix.quantize(jnp.asarray(x, jnp.float32), jnp.int8, channelwise_axes=list(range(1, x.ndim)))
            out[key + "#q"], out[key + "#scale"] = np.asarray(q.qvalue), np.asarray(q.scale, np.float32)
        else:
            out[key] = x
    return out


def dequantize_tree(flat, abstract):
    """The tree shaped like ``abstract`` (arrays or ShapeDtypeStructs) from ``quantize_tree``'s output."""
    import qwix

    keys, like, treedef = _paths(abstract)
    leaves = []
    for key, a in zip(keys, like):
        if key + "#q" in flat:
            q = qwix.QArray(qvalue=jnp.asarray(flat[key + "#q"]), scale=jnp.asarray(flat[key + "#scale"]),
                            zero_point=None, qtype=jnp.int8)
            x = qwix.dequantize(q)
        elif key in flat:
            x = jnp.asarray(flat[key])
        else:
            raise KeyError(f"{key} missing")
        if tuple(x.shape) != tuple(a.shape):
            raise ValueError(f"{key}: shape {tuple(x.shape)}, expected {tuple(a.shape)}")
        leaves.append(x.astype(a.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def read_int8(path: Path, abstract):
    """``dequantize_tree`` of ``path`` (an ``INT8_FILE``), refused in one line when damaged."""
    try:
        with np.load(path) as z:
            return dequantize_tree({k: z[k] for k in z.files}, abstract)
    except (OSError, ValueError, KeyError) as err:
        raise EEGInputError(f"{path}: damaged or does not match config.json ({str(err).splitlines()[0][:120]}); "
                            "quantize the model again") from None
