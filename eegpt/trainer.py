"""The one training loop, shared by pretraining, fine-tuning (frozen and trainable) and the
copilot's decoder.

What every run needs lives here once: the learning-rate schedule, the step jitted once with its
state donated (on a mesh, when given shardings), the loop that launches step n before reading the
metrics of step n-1 (so reading never stalls the device), the stop on a non-finite loss or
gradient before anything of the diverged state is saved, progress, the tracker, and the boundary
hook every ``every`` steps where runs checkpoint, evaluate and stop early. What differs — the loss,
the batches, what a boundary does — is passed in.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import optax

from eegpt.errors import TrainingError


def schedule(lr: float, warmup: int, steps: int, end: float):
    """Linear warm-up to ``lr``, then cosine decay to ``lr * end`` at ``steps``."""
    return optax.warmup_cosine_decay_schedule(0.0, lr, max(1, min(warmup, steps - 1)), max(steps, 2),
                                              end_value=lr * end)


def compile_step(step, state_shardings=None, batch_shardings=None):
    """Jit a training step once: ``step(state, batch) -> (state, metrics)``.

    The state is donated (its buffers are reused for the new state) and placed by
    ``state_shardings`` when given; the batch by ``batch_shardings`` when given, else where it
    arrives (a batch already put on the mesh, each host's rows)."""
    if state_shardings is None:
        return jax.jit(step, donate_argnums=(0,))
    if batch_shardings is None:
        return jax.jit(step, donate_argnums=(0,), out_shardings=(state_shardings, None))
    return jax.jit(step, donate_argnums=(0,), in_shardings=(state_shardings, batch_shardings),
                   out_shardings=(state_shardings, None))


class Trainer:
    """Runs a compiled step for steps ``start + 1`` to ``steps``.

    Parameters
    ----------
    step : ``(state, batch) -> (state, metrics)``; ``metrics`` holds ``loss`` (and, checked too,
        ``grad_norm`` when present).
    steps : the last step.
    every : interval of the boundary hook (and always at the last step).
    on_boundary : ``(step, state, metrics) -> state``: checkpoint, evaluate, set ``stop``.
    on_metrics : ``(step, metrics)`` for every step's checked metrics (history, tracker).
    desc, progress : the progress bar.
    nan_check : stop on a non-finite loss or gradient norm (``TrainingError``, one line).
    what : how the error names the run ("finetune", "pretrain").
    """

    def __init__(self, step, *, steps: int, every: int, on_boundary: Callable | None = None,
                 on_metrics: Callable | None = None, desc: str = "train", progress: bool = True,
                 nan_check: bool = True, what: str = "step", advice: str = "lower --lr or check the data"):
        self.step, self.steps, self.every = step, steps, max(int(every), 1)
        self.on_boundary, self.on_metrics = on_boundary, on_metrics
        self.desc, self.progress, self.nan_check, self.what, self.advice = desc, progress, nan_check, what, advice
        self.stop = False       # a boundary hook sets it to end the run early
        self.last_good = None   # the last step whose state was saved (named when a run diverges)

    def check(self, step_no: int, metrics) -> dict:
        m = {k: float(v) for k, v in jax.device_get(metrics).items()}
        bad = not math.isfinite(m["loss"]) or not math.isfinite(m.get("grad_norm", 0.0))
        if self.nan_check and bad:
            raise TrainingError(
                f"{self.what} step {step_no}: loss {m['loss']}" +
                (f", gradient norm {m['grad_norm']}" if "grad_norm" in m else "") +
                f": training diverged; stopped without saving (last good checkpoint: step "
                f"{self.last_good or 'none'}); {self.advice}")
        if self.on_metrics:
            self.on_metrics(step_no, m)
        return m

    def run(self, state, batch_at: Callable[[int], dict], start: int = 0):
        """Train from ``start``; returns the final state. ``batch_at(step)`` gives step's batch."""
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.steps, initial=start, desc=self.desc, unit="step")
        pending = None  # (step, metrics) of the step launched last: read after the next starts
        try:
            for it in range(start + 1, self.steps + 1):
                if self.stop:
                    break
                state, metrics = self.step(state, batch_at(it))
                if pending is not None:
                    self.check(*pending)
                pending = (it, metrics)
                if bar:
                    bar.update()
                if it % self.every and it != self.steps:
                    continue
                m = self.check(*pending)  # never act on a state whose own step was not checked
                pending = None
                if bar:
                    bar.set_postfix(loss=f"{m['loss']:.4f}", refresh=False)
                if self.on_boundary:
                    state = self.on_boundary(it, state, m)
            if pending is not None:
                self.check(*pending)
        finally:
            if bar:
                bar.close()
        return state
