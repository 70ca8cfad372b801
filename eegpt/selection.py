"""Model selection and calibration of a fine-tuning: at each evaluation the validation score decides
which parameters are kept (the linear start at step 0 among them) and when to stop; the kept model is
then given, per head, a temperature and the confidence it answers at, both fitted on the validation
windows, and its out-of-distribution reference (``eegpt.familiar``)."""

from __future__ import annotations

import jax
import numpy as np

from eegpt.familiar import familiar_reference, window_profile
from eegpt.metrics import answer_threshold, fit_temperature
from eegpt.model import EEGPT


class Selection:
    """Model selection at each evaluation boundary: the validation score, the best parameters kept
    apart (``best``), early stopping, and the training checkpoint (``ckpt``) to resume from."""

    def __init__(self, model: EEGPT, val_sets, cache, ft, run: dict, tracker, ckpt, best, data_it,
                 meta: dict):
        self.model, self.val_sets, self.cache, self.ft, self.run = model, val_sets, cache, ft, run
        self.tracker, self.ckpt, self.best, self.data_it, self.meta = tracker, ckpt, best, data_it, meta
        self.loop = None

    def __call__(self, it, state, m):
        params_now = jax.device_get(state["params"])
        val = {s.name: self.model.evaluate(s, "val", params_now, self.cache and self.cache[s.name])["balanced_accuracy"]
               for s in self.val_sets}
        # no val: keep the last step, or the linear start — nothing could show the graph improving on
        # it, and where validation could, it never has (the graph-input ablation, every seed)
        score = (float(np.mean(list(val.values()))) if val else
                 -float(it) if self.ft.readout_init == "lr" else float(it))
        self.run["history"].append({"step": it, **m, "val_balanced_accuracy": val, "val_mean": score if val else None})
        self.tracker.scalars({**m, **{f"val/{k}": v for k, v in val.items()}}, it)
        if score > self.run["best"]:
            self.run.update(best=score, best_step=it, since=0)
            if self.best.latest_step() != it:  # step 0 (the linear start) is saved once
                self.best.save_state(it, {"params": state["params"]}, {"step": it})
        else:
            self.run["since"] += 1
            self.run["stopped_early"] = self.loop.stop = self.run["since"] >= self.ft.patience
        if it == 0:  # nothing trained yet: no training checkpoint to resume from
            return state
        meta = {**self.meta, "run": self.run}
        if self.data_it is not None:
            self.ckpt.save(it, state, self.data_it, meta)
        else:
            self.ckpt.save_state(it, state, meta)
        self.loop.last_good = it
        return state


def calibrated(kept: EEGPT, stores, val_sets, cache, ft) -> tuple[EEGPT, dict, dict]:
    """The kept model with, per head, its temperature and the confidence it answers at (fitted on the
    validation windows the step was chosen on) and its out-of-distribution reference."""
    temperatures, answer_above = {}, {}
    for s in stores:
        cached = cache and cache[s.name]
        val = kept.run(s, "val", cached=cached) if s in val_sets else None
        if val is not None:
            temperatures[s.name] = round(fit_temperature(val["logits"], val["labels"]), 4)
            probs = jax.nn.softmax(val["logits"] / temperatures[s.name], -1)
            answer_above[s.name] = round(answer_threshold(val["labels"], probs, ft.answer_accuracy), 4)
        train = kept.run(s, "train", cached=cached)  # what the training data look like to the graph
        reference = familiar_reference(window_profile(train), train["subjects"],
                                       None if val is None else window_profile(val), ft.seed)
        if reference is not None:
            kept.familiar[s.name] = reference
    return kept.calibrated(temperatures, answer_above), temperatures, answer_above
