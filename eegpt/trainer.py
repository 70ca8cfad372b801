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
from dataclasses import dataclass
from typing import Callable

import jax
import optax

from eegpt.errors import EEGInputError, TrainingError, check_positive


@dataclass(frozen=True)
class RunConfig:
    """What every run over electrode sequences shares (the ETE's pretraining, NeuroLM's tokenizer):
    the encoder's size, the schedule, the batches, checkpoints, held-out scoring and the mesh."""

    preset: str = "base"           # model size: tiny, base, large, huge or giant (eegpt presets)
    steps: int = 1000              # total optimizer steps (a rerun with more resumes)
    batch_size: int = 256          # global: electrode sequences (electrode mode) or samples
    seq_tokens: int = 4            # tokens per sequence
    token_stride: int | None = None  # samples between token starts (None: the token length)
    lr: float = 1e-3               # peak learning rate (AdamW, warm-up then cosine)
    warmup: int = 100              # linear warm-up steps
    weight_decay: float = 0.05     # AdamW weight decay
    clip: float = 1.0              # gradient clipping by global norm
    seed: int = 0                  # initialisation and data order
    ckpt_every: int = 200          # checkpoint interval in steps
    log_every: int = 10            # TensorBoard interval in steps
    eval_split: str = "val"        # split whose tokens are scored at the end (held-out subjects)
    eval_batches: int = 40         # batches scored at the end
    mesh: tuple[int, int] = (0, 1)  # DATA,FSDP devices (DATA 0: all remaining devices)
    data_fraction: float = 1.0     # share of the training windows used (data-scaling sweeps)
    nan_check: bool = True         # stop with one line on a non-finite loss or gradient
    allow_held_out: bool = False   # train on subjects a benchmark holds out (no benchmark may then read the model)

    def __post_init__(self):
        check_positive(self, "steps", "batch_size", "seq_tokens", "token_stride", "lr", "ckpt_every", "log_every",
                       "eval_batches", "data_fraction")
        if self.warmup < 0 or self.weight_decay < 0 or self.clip <= 0:
            raise EEGInputError(f"--warmup {self.warmup}, --weight-decay {self.weight_decay}, --clip {self.clip}: "
                                "warm-up and weight decay must be >= 0, clipping > 0")


def checked_stores(cfg: RunConfig, stores, what: str) -> tuple[dict, list]:
    """(subjects seen per card, the stores holding ``cfg.eval_split``), refusing before any work
    stores that cannot be trained on (``what``: "pretrain", "train the tokenizer"), or that hold a
    subject a benchmark holds out."""
    from eegpt.protocols import check_pretraining

    for s in stores:
        if cfg.mode == "electrode" and cfg.tokens().count(s.window_samples) < cfg.seq_tokens:
            raise TrainingError(f"{s.path}: {s.index['window_s']:g}-s windows hold fewer than "
                                f"--seq-tokens {cfg.seq_tokens} tokens of {cfg.tokens().token_len} samples")
        if not len(s.indices("train")):
            raise TrainingError(f"{s.path}: no training windows to {what} on")
    # which subjects each card's training windows come from; a benchmark's held-out ones are refused
    seen = check_pretraining(stores, allow_held_out=cfg.allow_held_out)
    # the held-out split is scored at the end on the stores that hold it: checked now, not after
    # the last step (an eegmmidb store, whose card puts every subject in train, holds no val)
    held_out = [s for s in stores if len(s.indices(cfg.eval_split))]
    if not held_out:
        raise TrainingError(f"no store among {', '.join(str(s.path) for s in stores)} has windows in split "
                            f"{cfg.eval_split!r} to score the held-out subjects on; add a store with such subjects, "
                            "or give --eval-split train")
    return seen, held_out


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
