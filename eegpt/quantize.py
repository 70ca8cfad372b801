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

import numpy as np

from eegpt.errors import atomic_dir, refuse_overwrite
from eegpt.int8 import INT8_FILE, quantize_tree


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
