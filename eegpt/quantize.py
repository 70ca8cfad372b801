"""int8 weights for deployment (``eegpt quantize MODEL --out DIR``).

Every weight matrix of the encoder, the graph, the heads and the copilot's decoder is stored as
int8 with one float32 scale per output channel (symmetric absmax, quantized by ``qwix``); vectors
(biases, norms, the graph's normalisation statistics) and small matrices stay float32. The file is
``params-int8.npz`` in place of ``params/`` (or the decoder's ``checkpoints/``), about a quarter of
the size. Loading dequantizes the weights to float32 (``qwix.dequantize``), so a quantized model is
read and run as any other, at the float model's speed: on this CPU, XLA has no faster int8 path for
matrices this small, so what int8 buys here is size. What it costs in balanced accuracy and answer
quality is measured by ``experiments/copilot_pruning.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from eegpt.errors import EEGInputError, atomic_dir, refuse_overwrite

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


def quantize_model(source, out, overwrite: bool = False) -> Path:
    """Write the int8 copy of the model directory ``source`` (with its copilot, when it has one) to
    ``out``; returns ``out``."""
    from eegpt.copilot import decoder as C
    from eegpt.model import load, model_dir

    src = model_dir(source)
    out = Path(out)
    refuse_overwrite(out, overwrite, "a model directory")
    model = load(src)  # refuses a damaged model before anything is written
    decoder = C.load(src / "copilot") if (src / "copilot" / "config.json").exists() else None
    with atomic_dir(out.resolve()) as tmp:
        shutil.copy(src / "config.json", tmp / "config.json")
        if (src / "familiar.npz").exists():
            shutil.copy(src / "familiar.npz", tmp / "familiar.npz")
        np.savez_compressed(tmp / INT8_FILE, **quantize_tree(model.params))
        if decoder is not None:
            dec, tok = decoder
            (tmp / "copilot").mkdir()
            tok.save(str(tmp / "copilot" / "tokenizer.json"))
            shutil.copy(src / "copilot" / "config.json", tmp / "copilot" / "config.json")
            np.savez_compressed(tmp / "copilot" / INT8_FILE, **quantize_tree(C.parameters(dec)))
        meta = json.loads((tmp / "config.json").read_text())
        meta["provenance"] = {**meta.get("provenance", {}), "quantized": "int8 weights (per channel), from "
                              + str(src)}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def disk_bytes(path) -> int:
    """Bytes of every file under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
