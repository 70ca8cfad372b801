"""Evaluation of a fine-tuned model on prepared stores (``eegpt evaluate``), and what a fine-tuning
kept (``kept_model``), which every EEGPT score is printed beside."""

from __future__ import annotations

import json
from pathlib import Path

import jax

from eegpt.features import node_views
from eegpt.model import load
from eegpt.store import open_stores


def kept_model(summary: dict) -> dict:
    """What a fine-tuning kept, per head (``{dataset name: ...}``), from its ``finetune.json``
    summary: the step kept on validation; at step 0 with a linear start, the logistic regression on
    the views its search chose and nothing of the graph (its output starts at zero); at a later
    step, the graph over every node view beside the readout. ``ete_read``: whether the ETE's
    features reach the answer. ``text``: all of it in one line, printed beside every score."""
    ft, step = summary["finetune"], summary["best_step"]
    nodes = node_views(ft["nodes"])
    out = {}
    for d in summary["datasets"]:
        start = (summary.get("readout_start") or {}).get(d["name"])
        if step == 0 and ft["readout_init"] == "lr" and start:
            views, what = start["view"].split("+"), "linear start"
        else:
            views, what = nodes, "graph"
        ete_read = "ete" in views
        out[d["name"]] = {"step": step, "what": what, "views": views, "ete_read": ete_read,
                          "text": f"step {step} ({what}): {'+'.join(views)}; ETE {'read' if ete_read else 'not read'}"}
    return out


def evaluate(workdir, stores, split: str = "test", plots: bool = True, features: dict | None = None) -> dict:
    """Metrics of a fine-tuned model on each store's ``split``; confusion plots beside the model;
    ``kept``: what the fine-tuning in ``workdir`` kept (``kept_model``; None for a bare model
    directory). ``features``: the frozen ETE's features of the stores (``finetune``'s ``features_out``)."""
    from eegpt.metrics import (classification, coverage_curve, expected_calibration_error, plot_confusion,
                               plot_coverage)

    model = load(workdir)
    tuned = Path(workdir) / "finetune.json"  # a fine-tuning workdir says what it kept; a bare model directory not
    what_kept = kept_model(json.loads(tuned.read_text())) if tuned.exists() else {}
    out = {}
    for s in open_stores(stores):
        run = model.run(s, split, cached=(features or {}).get(s.name))
        r = classification(run["labels"], run["probs"], len(s.classes))
        raw = jax.nn.softmax(run["logits"], -1)  # before temperature scaling
        r["temperature"] = model.cfg.head(s.name).temperature
        r["ece_uncalibrated"] = expected_calibration_error(run["labels"], raw)
        r["task"], r["classes"], r["split"] = s.task, s.classes, split
        r["kept"] = what_kept.get(s.name)
        out[s.name] = r
        if plots:
            path = Path(workdir) / f"confusion-{s.name}-{split}.png"
            plot_confusion(r["confusion"], s.classes, path,
                           f"{s.name} ({split}): balanced accuracy {r['balanced_accuracy']:.3f}")
            r["confusion_plot"] = str(path)
            path = Path(workdir) / f"coverage-{s.name}-{split}.png"
            plot_coverage({"EEGPT": coverage_curve(run["labels"], run["probs"])}, path,
                          f"{s.name} ({split}): abstaining below a confidence")
            r["coverage_plot"] = str(path)
    return out
