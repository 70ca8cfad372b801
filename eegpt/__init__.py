"""EEGPT: an autoregressive EEG generalist with graph heads, in JAX.

The public API, MNE- and scikit-learn-style functions on objects people already hold::

    import eegpt
    rec = eegpt.read("sub-01.edf")                      # any format MNE reads, tables, mne objects
    store = eegpt.prepare("eegmat", "EEGMAT/", "stores/eegmat")
    eegpt.pretrain(eegpt.PretrainConfig(steps=400), [store], "runs/ete")
    eegpt.finetune("runs/ete", [store], "runs/ft")      # writes the model directory runs/ft/model
    model = eegpt.load("runs/ft/model")
    pred = eegpt.predict(model, raw)                    # path, Recording, mne.io.Raw or mne.Epochs
    eegpt.embed("runs/ft/model", [store], "emb.npz")
    eegpt.Copilot("runs/demo/model").ask("rec.edf", age=42, sex="female")

Names are imported on first use, so ``import eegpt`` stays quick (0.5 s rather than 3 s: the CLI
pays it on every command). Four functions share their module's name (``predict``, ``embed``,
``preprocess``, ``finetune``): importing the module must not replace the function on the package,
so the package keeps its API names (``from eegpt.predict import ...`` still finds the module).
"""

import sys
import types
from importlib import import_module

__version__ = "0.1.0"

# The five kinds of question, in the order batches index them (``task_B``): the one task list.
TASKS = ("ER", "MI", "MW", "SS", "CM")

_API = {
    "read": "eegpt.recording", "Recording": "eegpt.recording",
    "preprocess": "eegpt.preprocess", "Preprocess": "eegpt.preprocess",
    "prepare": "eegpt.store", "Store": "eegpt.store",
    "pretrain": "eegpt.train", "PretrainConfig": "eegpt.train",
    "finetune": "eegpt.finetune", "FinetuneConfig": "eegpt.finetune",
    "load": "eegpt.model", "save": "eegpt.model", "EEGPT": "eegpt.model", "EEGPTConfig": "eegpt.model",
    "predict": "eegpt.predict", "Prediction": "eegpt.predict",
    "embed": "eegpt.embed", "tsne": "eegpt.embed",
    "Copilot": "eegpt.copilot",
    "EEGInputError": "eegpt.errors", "TrainingError": "eegpt.errors",
}
__all__ = sorted(_API)


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _API and isinstance(value, types.ModuleType):
            return  # a submodule named like an API function: the function stays eegpt.<name>
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'eegpt' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
