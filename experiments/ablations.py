"""Ablations on a synthetic development corpus: one command each, each writing
``WORKDIR/<name>.json`` and ``WORKDIR/<name>.png``. Per arm and task: the validation balanced
accuracy of the step each run kept (the choice reads this alone: the arm with the best mean over
tasks and seeds is ``chosen``), the test balanced accuracy (reported after the choice, never read
by it), and what each run kept (step, views, whether the ETE was read). The corpus is drawn with
``--corpus-seed`` (1000), which no demo uses, so no choice made here has seen a demo's subjects.

    python experiments/ablations.py joint-vs-single            --workdir runs/ablations
    python experiments/ablations.py ar-vs-mae                  --workdir runs/ablations
    python experiments/ablations.py frozen-vs-trainable        --workdir runs/ablations
    python experiments/ablations.py electrode-vs-multichannel  --workdir runs/ablations
    python experiments/ablations.py graph-start                --workdir runs/ablations
    python experiments/ablations.py graph-input                --workdir runs/ablations
    python experiments/ablations.py laplacian                  --workdir runs/ablations
    python experiments/ablations.py linear-start               --workdir runs/ablations
    python experiments/ablations.py gentle-graph               --workdir runs/ablations
    python experiments/ablations.py readout                    --workdir runs/ablations
    python experiments/ablations.py pretrain-length            --workdir runs/ablations
    python experiments/ablations.py cap-positions --demo runs/demo-quick --workdir runs/ablations

Every arm uses the demo's recipe (``eegpt demo --quick``: 14 synthetic subjects, base preset,
400 pretraining steps, 1,000 fine-tuning steps of a one-layer graph) unless told otherwise, and the same train /
validation / test subjects; each seed re-initialises the pretraining and the fine-tuning (the
corpus stays the same). What differs between arms:

- ``joint-vs-single``: one pretrained ETE; the graph fine-tuned on all five tasks at once, or
  once per task with the same number of steps each (so each single-task run sees its task ~5x
  more often than the joint run does).
- ``ar-vs-mae``: next-token (AR) or masked-token (MAE) pretraining, same steps; joint fine-tuning.
- ``frozen-vs-trainable``: one pretrained ETE; joint fine-tuning with the ETE frozen (EEGPT) or
  trained at ``ete_lr``.
- ``graph-start``: one pretrained ETE; the graph's node gates start at 1 (every electrode alike)
  or random, with three graph layers (the base preset) or one (the demo).
- ``graph-input``: one pretrained ETE; what the graph reads per electrode and how each head reads
  out: the ETE's feature alone (EEGPT); the ETE's feature with the electrode's five log band powers
  and its first second in 16 bins (the ERP view); or those two classical views alone, without the
  encoder. The last two add each head's per-electrode linear readout of the classical views beside
  the pooled vector, started as a logistic regression fitted on the training windows (view and C
  chosen on the validation subjects), so the graph starts where the classical baselines are and
  has to add to them; the step kept is chosen on validation, the start included.
- ``laplacian``: one pretrained ETE; the demo's graph input (ETE + bands + ERP, linear start),
  with or without a fourth view per electrode: the five log band powers of its surface Laplacian
  (its signal minus the mean of its four nearest electrodes, ``eegpt.features.laplacian``) — the local
  contrast CSP finds with spatial filters.
- ``linear-start``: one pretrained ETE; the demo's graph input and linear start with the
  absolute views only (ETE + bands + ERP + Laplacian bands), with the relative views beside them
  (``rel``, ``laprel``: each band's log share of the electrode's total power, raw and Laplacian),
  and with every combination of views tried on validation instead of each view alone and all
  together (``--readout-search``). The two other changes of that step (Welch band powers, unit-
  variance readout columns) are built in and not ablated here.
- ``gentle-graph``: one pretrained ETE; the quick demo's fine-tuning (learning rate 3e-3, the
  readout trained too, evaluated every 200 steps, patience 2), or a gentler one that can add the
  graph to the linear start without undoing it: the readout kept as fitted (``readout_lr=0``),
  learning rate 3e-4, evaluated every 25 steps, patience 6. Both keep the step validation prefers,
  the linear start included.
- ``readout``: the demo's recipe, whose linear start reads the classical views alone, or the same
  with the ETE offered to it (``readout="all"``, ``readout_search="combinations+ete"``): the best
  combination of the classical views, then that combination with and without the ETE's features,
  the ETE read only where it scores higher on validation. (Every combination of six views with the
  ETE's among them, 63 candidates, took over an hour a seed.)
- ``pretrain-length``: the ETE pretrained ``--pretrain-steps`` (400) or ten times as long; the demo's
  graph input and linear start, with the ETE offered to the start as in the ``readout`` ablation
  (``readout="all"``, ``readout_search="combinations+ete"``), so the start can use what longer
  pretraining adds (the demo's readout reads only the classical views, so its start does not depend
  on the encoder). The demo's recipe on the short ETE is the reference arm.
- ``cap-positions``: no training; the model of a finished demo (``--demo``, default the quick
  demo's) reads its own test subjects recorded with a cap whose electrodes are not at their 10-10
  sites — each moved ``--degrees`` (seen from the head's centre) in a random direction, drawn anew
  per seed and subject, the same brain simulated under the moved electrodes, the channels numbered
  ``E1``… with their positions. Arms: the 10-10 cap read by name; the moved cap read by
  ``eegpt.read`` as each channel's nearest free 10-10 electrode within 10 degrees, the others set
  aside (``place="nearest"``, the default); the moved cap read with ``place="splines"`` (one 10-10
  site per channel by optimal assignment, its samples interpolated there by spherical splines);
  the moved cap interpolated by spherical splines onto the answering head's own montage, the sites
  the cap surrounds (``place="montage"`` of ``eegpt.predict``: ``read(place="splines",
  onto=head.electrodes)``). SS is left out (its derivations are bipolar), and CM
  (Muse's four electrodes are too few to find a head's centre, so too few to place by position).
- ``electrode-vs-multichannel``: the ETE reads each electrode alone, or all electrodes of a
  window per token (the multichannel AR of EEGPT-style models), with batches holding about the
  same EEG per step (256 electrode sequences or 8 windows); both pretrained and fine-tuned
  on ER, MI and MW only, because a multichannel ETE needs one window length (SS windows are 30 s,
  CM 1 s).

Runs resume: rerunning a command reuses the pretraining and fine-tuning already done in WORKDIR.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from eegpt import TASKS as ALL
from eegpt.demo import PLANS, synthetic_stores
from eegpt.errors import EEGInputError, TrainingError, atomic_write
from eegpt.evaluate import evaluate, kept_model
from eegpt.finetune import FinetuneConfig, finetune
from eegpt.train import PretrainConfig, pretrain
SAME_WINDOW = ("ER", "MI", "MW")
# The development corpus every ablation trains, chooses and scores on: drawn with a seed no demo uses
# (a demo's corpus is drawn with its own seed, 0, 1, 2, ...), so a choice made here reads none of the
# demo's subjects, and within it the choice reads the validation subjects alone.
DEV_CORPUS_SEED = 1000


def pretrained(workdir: Path, stores: dict, tasks, steps: int, seed: int, mode="electrode", objective="ar",
               tag="") -> Path:
    on = "" if tuple(tasks) == ALL else "-" + "".join(t.lower() for t in tasks)
    out = workdir / f"ete-{mode}-{objective}{on}{tag}-seed{seed}"
    # A step sees about the same EEG in both modes: 256 electrode sequences, or 8 windows of all
    # their electrodes (ER/MI/MW average ~36 electrodes a window).
    batch = 256 if mode == "electrode" else 8
    pretrain(PretrainConfig(preset=PLANS["quick"].preset, steps=steps, batch_size=batch, seq_tokens=4, seed=seed,
                            mode=mode, objective=objective, ckpt_every=max(steps, 1), eval_batches=10),
             [stores[t] for t in tasks if t != "CM"], out, progress=False, track=False)
    return out


def tuned(ete: Path, stores: dict, tasks, workdir: Path, ft: FinetuneConfig) -> dict:
    """``{"val": {task: ...}, "test": {task: ...}, "kept": {task: ...}}`` of the graph fine-tuned on
    ``tasks`` over ``ete``: the validation balanced accuracy of the step kept (what an arm is chosen
    on), the test balanced accuracy of that step (reported, never chosen on), and what was kept."""
    picked = [stores[t] for t in tasks]
    features = {}  # the frozen ETE's features, encoded once by fine-tuning and read again for scoring
    summary = finetune(ete, picked, workdir, ft, progress=False, track=False, features_out=features)
    scores = evaluate(workdir, picked, "test", plots=False, features=features)
    at_best = next(h for h in summary["history"] if h["step"] == summary["best_step"])
    described = kept_model(summary)
    return {"val": {t: at_best["val_balanced_accuracy"][stores[t].name] for t in tasks},
            "test": {t: scores[stores[t].name]["balanced_accuracy"] for t in tasks},
            "kept": {t: described[stores[t].name] for t in tasks}}


def arms(name: str, workdir: Path, stores: dict, seed: int, args) -> dict:
    """{arm: tuned(...)} of one ablation for one seed: validation and test scores per task."""
    ft = FinetuneConfig(steps=args.finetune_steps, eval_every=max(args.finetune_steps // 5, 1), lr=3e-3,
                        k_neighbours=8, patience=100, graph_layers=PLANS["quick"].graph_layers, seed=seed)
    run = workdir / name / f"seed{seed}"
    if name == "joint-vs-single":
        ete = pretrained(workdir, stores, ALL, args.pretrain_steps, seed)
        single = {}
        for t in ALL:
            single.update(tuned(ete, stores, [t], run / f"single-{t.lower()}", ft))
        return {"joint": tuned(ete, stores, ALL, run / "joint", ft), "single-task": single}
    if name == "ar-vs-mae":
        return {obj.upper(): tuned(pretrained(workdir, stores, ALL, args.pretrain_steps, seed, objective=obj),
                                   stores, ALL, run / obj, ft) for obj in ("ar", "mae")}
    if name == "frozen-vs-trainable":
        ete = pretrained(workdir, stores, ALL, args.pretrain_steps, seed)
        return {"frozen": tuned(ete, stores, ALL, run / "frozen", ft),
                "trainable": tuned(ete, stores, ALL, run / "trainable", dataclasses.replace(ft, train_ete=True))}
    if name == "graph-start":
        ete = pretrained(workdir, stores, ALL, args.pretrain_steps, seed)
        return {f"gates {'1' if start == 'ones' else 'random'}, K={k}": tuned(
                    ete, stores, ALL, run / f"{start}-{k}", dataclasses.replace(ft, gate_start=start, graph_layers=k))
                for start in ("ones", "random") for k in (3, 1)}
    if name == "graph-input":
        ete = pretrained(workdir, stores, ALL, args.pretrain_steps, seed)
        start = dict(readout="classical", readout_init="lr")
        return {"ETE": tuned(ete, stores, ALL, run / "ete", ft),
                "ETE + bands + ERP, linear start": tuned(ete, stores, ALL, run / "ete+bands+erp",
                                                         dataclasses.replace(ft, nodes="ete+bands+erp", **start)),
                "bands + ERP, linear start": tuned(ete, stores, ALL, run / "bands+erp",
                                                   dataclasses.replace(ft, nodes="bands+erp", **start))}
    if name == "laplacian":
        ete = pretrained(workdir, stores, ALL, args.pretrain_steps, seed)
        start = dict(readout="classical", readout_init="lr")
        return {view: tuned(ete, stores, ALL, run / view.replace(" ", ""), dataclasses.replace(ft, nodes=nodes, **start))
                for view, nodes in (("ETE + bands + ERP", "ete+bands+erp"),
                                    ("ETE + bands + ERP + Laplacian", "ete+bands+erp+lap"))}
    if name == "linear-start":
        ete = pretrained(workdir, stores, ALL, args.pretrain_steps, seed)
        start = dict(readout="classical", readout_init="lr")
        return {arm: tuned(ete, stores, ALL, run / key, dataclasses.replace(ft, nodes=nodes, readout_search=search,
                                                                            **start))
                for arm, key, nodes, search in (
                    ("absolute views", "absolute", "ete+bands+erp+lap", "each"),
                    ("+ relative views", "relative", "ete+bands+rel+erp+lap+laprel", "each"),
                    ("+ every combination", "combinations", "ete+bands+rel+erp+lap+laprel", "combinations"))}
    # the quick demo's fine-tuning: its graph input, linear start, evaluation and early stopping
    demo_ft = dataclasses.replace(ft, nodes=PLANS["quick"].nodes, readout=PLANS["quick"].readout,
                                  readout_init=PLANS["quick"].readout_init, readout_search=PLANS["quick"].readout_search,
                                  eval_every=PLANS["quick"].eval_every, patience=PLANS["quick"].patience)
    if name == "gentle-graph":
        ete = pretrained(workdir, stores, ALL, args.pretrain_steps, seed)
        return {"demo recipe": tuned(ete, stores, ALL, run / "demo", demo_ft),
                "gentle graph": tuned(ete, stores, ALL, run / "gentle",
                                      dataclasses.replace(demo_ft, lr=3e-4, readout_lr=0.0, eval_every=25, patience=6))}
    if name == "readout":
        ete = pretrained(workdir, stores, ALL, args.pretrain_steps, seed)
        # the demo recipe's run is the gentle-graph ablation's own (the same fine-tuning, run once)
        return {"demo recipe": tuned(ete, stores, ALL, workdir / "gentle-graph" / f"seed{seed}" / "demo", demo_ft),
                "ETE offered to the linear start": tuned(ete, stores, ALL, run / "all-plus-ete",
                                                         dataclasses.replace(demo_ft, readout="all",
                                                                             readout_search="combinations+ete"))}
    if name == "pretrain-length":
        short, long_ = args.pretrain_steps, 10 * args.pretrain_steps
        ete = {short: pretrained(workdir, stores, ALL, short, seed),
               # its own folder: a pretraining run given more steps would resume the short one
               long_: pretrained(workdir, stores, ALL, long_, seed, tag=f"-{long_}steps")}
        out = {f"demo recipe, {short:,} steps": tuned(ete[short], stores, ALL, run / "demo", demo_ft)}
        for steps, path in ete.items():  # the ETE offered to the start as the readout ablation offers it
            out[f"ETE offered to the linear start, {steps:,} steps"] = tuned(
                path, stores, ALL, run / f"all-plus-ete-{steps}",
                dataclasses.replace(demo_ft, readout="all", readout_search="combinations+ete"))
        return out
    if name == "electrode-vs-multichannel":
        return {mode: tuned(pretrained(workdir, stores, SAME_WINDOW, args.pretrain_steps, seed, mode=mode),
                            stores, SAME_WINDOW, run / mode, ft) for mode in ("electrode", "multichannel")}
    raise ValueError(name)


def displaced(xyz: np.ndarray, degrees: float, rng) -> np.ndarray:
    """Positions ``xyz`` [C, 3] each moved ``degrees`` over the sphere that fits them, in a random direction."""
    centre = np.linalg.lstsq(np.c_[2 * xyz, np.ones(len(xyz))], (xyz ** 2).sum(1), rcond=None)[0][:3]
    radius = np.linalg.norm(xyz - centre, axis=1, keepdims=True)
    u = (xyz - centre) / radius
    t = rng.standard_normal(xyz.shape)
    t -= (t * u).sum(1, keepdims=True) * u  # tangent to the sphere
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    a = np.radians(degrees)
    return centre + radius * (np.cos(a) * u + np.sin(a) * t)


CAP_TEMPLATES = ("easycap-M1", "biosemi128", "biosemi256", "GSN-HydroCel-32", "GSN-HydroCel-64_1.0",
                 "GSN-HydroCel-129", "GSN-HydroCel-256")


def template_distances() -> dict:
    """How far MNE's standard cap templates sit from the 10-10 sites eegpt.read places them on:
    {cap: {channels, placed, median, p90 (degrees)}} — the displacements a real cap brings."""
    import warnings

    import mne

    from eegpt.electrodes import by_position

    out = {}
    for cap in CAP_TEMPLATES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            xyz = mne.channels.make_standard_montage(cap).get_positions()["ch_pos"]
        degrees = np.array([d for _, d in by_position(xyz, list(xyz)).values()])
        out[cap] = {"channels": len(xyz), "placed": len(degrees), "median": round(float(np.median(degrees)), 1),
                    "p90": round(float(np.percentile(degrees, 90)), 1)}
    return out


def cap_positions(demo: Path, stores: dict, seed: int, degrees) -> dict:
    """{arm: {task: test balanced accuracy}} of ``demo``'s model on its test subjects, recorded by
    the 10-10 cap and by caps moved ``degrees`` off it (drawn with ``seed``), read three ways."""
    import mne
    from sklearn.metrics import balanced_accuracy_score

    from eegpt.cards import window_starts
    from eegpt.electrodes import classify, position
    from eegpt.model import load
    from eegpt.predict import window_batches
    from eegpt.preprocess import preprocess
    from eegpt.recording import read
    from eegpt.synth import TASK_SPECS as SPEC
    from eegpt.synth.simulate import make_subject, simulate

    mne.set_log_level("error")  # the splines' origin fit reports on every recording
    model = load(demo / "model")
    corpus_seed = json.loads((demo / "corpus" / "corpus.json").read_text())["seed"]
    out = {}
    for task in ("ER", "MI", "MW"):
        store, eeg = stores[task], [classify(c).name for c in SPEC[task].channels]
        head = model.cfg.head(store.name)
        on_grid = np.stack([position(e) for e in eeg]).astype(np.float64)
        truth, guess = {}, {}
        for sub in sorted({int(x) for x in store.subject_of[store.indices("test")]}):
            subject = make_subject(corpus_seed, sub)
            names, x, sfreq, trials = simulate(task, subject, corpus_seed)
            info = mne.create_info(list(names[:len(eeg)]), sfreq, "eeg")
            readings = {"10-10 cap, by name": (mne.io.RawArray(x[:len(eeg)] * 1e-6, info, verbose=False), {})}
            for deg in degrees:
                at = displaced(on_grid, deg, np.random.default_rng([seed, sub, int(deg * 10)]))
                moved = simulate(task, subject, corpus_seed, at=at)[1][:len(eeg)]
                numbered = [f"E{i + 1}" for i in range(len(eeg))]
                raw = mne.io.RawArray(moved * 1e-6, mne.create_info(numbered, sfreq, "eeg"), verbose=False)
                raw.set_montage(mne.channels.make_dig_montage(dict(zip(numbered, at)), coord_frame="head"))
                readings[f"nearest electrode, {deg:g} deg"] = (raw, {"place": "nearest"})
                readings[f"splines, {deg:g} deg"] = (raw, {"place": "splines"})
                readings[f"splines onto the montage, {deg:g} deg"] = (raw, {"place": "splines", "onto": head.electrodes})
            for arm, (raw, how) in readings.items():
                rec = preprocess(read(raw, **how), head.recipe)
                starts, labels = [], []
                for onset, duration, k in trials:  # each trial tiled as the card's windows tile it
                    span = window_starts(round(onset * rec.sfreq), min(round((onset + duration) * rec.sfreq),
                                                                       rec.n_samples),
                                         head.window_samples, head.stride_samples)
                    starts += span
                    labels += [list(head.classes).index(SPEC[task].classes[k])] * len(span)
                probs = model.score(window_batches(model, rec, starts, head.window_samples), head.name)["probs"]
                truth.setdefault(arm, []).extend(labels)
                guess.setdefault(arm, []).extend(np.argmax(probs, 1))
        for arm in truth:
            out.setdefault(arm, {})[task] = float(balanced_accuracy_score(truth[arm], guess[arm]))
    return out


ABLATIONS = ("joint-vs-single", "ar-vs-mae", "frozen-vs-trainable", "electrode-vs-multichannel", "graph-start",
             "graph-input", "laplacian", "linear-start", "gentle-graph", "readout", "pretrain-length", "cap-positions")


def summarise(per_seed: list[dict]) -> dict:
    """Per arm and task: the test and (where the arm trains) validation balanced accuracy as
    mean ± std over seeds, their means over tasks, and what each seed's model kept."""
    out = {}
    for arm in per_seed[0]:
        out[arm] = {}
        for split in ("test", "val"):
            if split not in per_seed[0][arm]:
                continue
            tasks = {t: [s[arm][split][t] for s in per_seed] for t in per_seed[0][arm][split]}
            key = "tasks" if split == "test" else "val"
            out[arm][key] = {t: {"mean": float(np.mean(v)), "std": float(np.std(v)), "seeds": v}
                             for t, v in tasks.items()}
            out[arm]["mean_over_tasks" if split == "test" else "val_mean_over_tasks"] = float(
                np.mean([np.mean(v) for v in tasks.values()]))
        if "kept" in per_seed[0][arm]:
            out[arm]["kept"] = [s[arm]["kept"] for s in per_seed]
    return out


def choose(arms_: dict) -> dict:
    """The arm with the best validation score (mean over tasks and seeds), or none where the arms
    were not trained (cap-positions measures a finished model and chooses nothing)."""
    scored = {a: r["val_mean_over_tasks"] for a, r in arms_.items() if "val_mean_over_tasks" in r}
    if not scored:
        return {"arm": None, "on": "nothing: no arm is trained here, so nothing is chosen"}
    best = max(scored, key=scored.get)  # on a tie, the arm listed first (the simpler one, by the lists above)
    return {"arm": best, "on": "validation balanced accuracy of the step each run kept, mean over tasks and seeds",
            "val_mean_over_tasks": scored, "tied": [a for a in scored if a != best and scored[a] == scored[best]]}


def plot(name: str, result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms_ = list(result["arms"])
    tasks = list(result["arms"][arms_[0]]["tasks"])
    width = 0.8 / len(arms_)
    fig, ax = plt.subplots(figsize=(max(1.3 * len(tasks) + 2, 2.2 * min(len(arms_) + 1, 4)),
                                    3.2 + 0.25 * (len(arms_) + 4) // 4))
    for i, arm in enumerate(arms_):
        r = result["arms"][arm]["tasks"]
        ax.bar(np.arange(len(tasks)) + i * width, [r[t]["mean"] for t in tasks], width,
               yerr=[r[t]["std"] for t in tasks], label=arm, capsize=3)
    ax.scatter(np.arange(len(tasks)) + 0.4 - width / 2, [result["chance"][t] for t in tasks], marker="_", s=300,
               color="k", label="chance", zorder=3)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks)
    ax.set_ylabel("test balanced accuracy")
    ax.set_ylim(0, 1)
    chosen = result.get("chosen", {}).get("arm")
    ax.set_title(f"{name} ({len(result['seeds'])} seeds; test subjects)"
                 + (f"\nchosen on the validation subjects: {chosen}" if chosen else ""), fontsize=10)
    ax.legend(fontsize=8, ncol=min(len(arms_) + 1, 4), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ablation", choices=ABLATIONS)
    p.add_argument("--workdir", type=Path, default=Path("runs/ablations"))
    p.add_argument("--subjects", type=int, default=PLANS["quick"].subjects)
    p.add_argument("--pretrain-steps", type=int, default=PLANS["quick"].pretrain_steps)
    p.add_argument("--finetune-steps", type=int, default=PLANS["quick"].finetune_steps)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--corpus-seed", type=int, default=DEV_CORPUS_SEED,
                   help="the development corpus the arms are trained, chosen and scored on (the demo's corpora "
                        "are drawn with its seeds, 0, 1, 2, ...: keep this apart from them)")
    p.add_argument("--demo", type=Path, default=Path("runs/demo-quick"),
                   help="cap-positions: a finished demo's directory (its model, corpus and stores)")
    p.add_argument("--degrees", type=float, nargs="+", default=[4.0, 6.0, 8.0],
                   help="cap-positions: how far the cap's electrodes sit off their 10-10 sites")
    p.add_argument("--markdown", action="store_true",
                   help="print the finished ablation's table (WORKDIR/<name>.json) as Markdown; trains nothing")
    args = p.parse_args(argv)
    if args.markdown:
        done = args.workdir / f"{args.ablation}.json"
        if not done.exists():
            print(f"error: {done}: no such result; run the ablation first", file=sys.stderr)
            return 2
        print(markdown(json.loads(done.read_text())))
        return 0
    t0 = time.perf_counter()
    try:
        if args.ablation == "cap-positions":
            if not (args.demo / "model").is_dir() or not (args.demo / "corpus" / "corpus.json").exists():
                raise EEGInputError(f"{args.demo}: no finished demo here; run eegpt demo --workdir {args.demo} first")
            corpus = json.loads((args.demo / "corpus" / "corpus.json").read_text())
            stores = synthetic_stores(args.demo, corpus["subjects"], corpus["seed"])
            stores = {t: s for t, s in stores.items() if t in ("ER", "MI", "MW")}
        else:
            stores = synthetic_stores(args.workdir, args.subjects, args.corpus_seed)
        per_seed = []
        for seed in args.seeds:
            per_seed.append({arm: {"test": r} for arm, r in cap_positions(args.demo, stores, seed, args.degrees).items()}
                            if args.ablation == "cap-positions"
                            else arms(args.ablation, args.workdir, stores, seed, args))
            print(f"seed {seed}: " + "; ".join(f"{arm} " + " ".join(
                f"{t} {v:.3f}" + (f" (val {r['val'][t]:.3f})" if "val" in r else "") for t, v in r["test"].items())
                for arm, r in per_seed[-1].items()), flush=True)
    except (EEGInputError, TrainingError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = summarise(per_seed)
    result = {"ablation": args.ablation, "subjects": args.subjects, "pretrain_steps": args.pretrain_steps,
              "finetune_steps": args.finetune_steps, "seeds": args.seeds,
              "corpus_seed": corpus["seed"] if args.ablation == "cap-positions" else args.corpus_seed,
              "metric": "balanced accuracy: 'val' on the validation subjects (the choice), 'tasks' on the test "
                        "subjects (reported after the choice)",
              "chance": {t: 1 / len(s.classes) for t, s in stores.items()},
              "arms": summary, "chosen": choose(summary), "seconds": round(time.perf_counter() - t0, 1)}
    if args.ablation == "cap-positions":
        result["templates"] = template_distances()
        from eegpt.electrodes import ten_10_sites

        names, directions = ten_10_sites()
        step = np.degrees(np.arccos(directions[names.index("C3")] @ directions[names.index("C1")]))
        print(f"\nMNE's cap templates placed on 10-10 sites (degrees from the site; C3 to C1 is {step:.0f}):")
        for cap, d in result["templates"].items():
            print(f"  {cap:<20} {d['placed']:>3} of {d['channels']:>3} channels placed, median {d['median']:.1f}, "
                  f"90th percentile {d['p90']:.1f}")
    out = args.workdir / f"{args.ablation}.json"
    args.workdir.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda t: t.write_text(json.dumps(result, indent=2) + "\n"))
    plot(args.ablation, result, args.workdir / f"{args.ablation}.png")
    print_table(result)
    print(f"(mean ± std over seeds {args.seeds}, corpus seed {result['corpus_seed']}; "
          f"{result['seconds']:.0f} s) -> {out}")
    return 0


def kept_summary(kept: list[dict]) -> str:
    """What an arm's runs kept, over seeds and tasks, in a few words."""
    steps = sorted({k["step"] for seed in kept for k in seed.values()})
    whats = sorted({k["what"] for seed in kept for k in seed.values()})
    read = {k["ete_read"] for seed in kept for k in seed.values()}
    ete = "ETE read" if read == {True} else "ETE not read" if read == {False} else "ETE read on some tasks"
    return f"step {', '.join(map(str, steps))} ({' / '.join(whats)}); {ete}"


def markdown(result: dict) -> str:
    """The result as a Markdown table: per arm the validation mean the choice read, each task's
    test balanced accuracy (mean ± std over seeds), the test mean and what was kept."""
    arm_names = list(result["arms"])
    tasks = list(result["arms"][arm_names[0]]["tasks"])
    chosen = result.get("chosen", {}).get("arm")
    rows = ["| arm | validation mean (the choice) | " + " | ".join(f"test {t}" for t in tasks) + " | test mean | kept |",
            "|---" * (len(tasks) + 4) + "|"]
    for a in arm_names:
        r = result["arms"][a]
        val = f"{r['val_mean_over_tasks']:.3f}" if "val_mean_over_tasks" in r else "—"
        name = f"**{a}** (chosen)" if a == chosen else a
        rows.append(f"| {name} | {val} | " + " | ".join(f"{r['tasks'][t]['mean']:.3f} ± {r['tasks'][t]['std']:.3f}"
                                                      for t in tasks)
                    + f" | {r['mean_over_tasks']:.3f} | {kept_summary(r['kept']) if 'kept' in r else '—'} |")
    return "\n".join(rows)


def print_table(result: dict) -> None:
    """One row per arm: the validation mean the choice reads, then each task's test balanced
    accuracy (mean ± std over the seeds), and the arm chosen on validation."""
    arm_names = list(result["arms"])
    tasks = list(result["arms"][arm_names[0]]["tasks"])
    width = max(len(a) for a in arm_names)
    print(f"\n{'arm':<{width}} {'val mean':>9}" + "".join(f"{'test ' + t:>16}" for t in tasks))
    for a in arm_names:
        r = result["arms"][a]
        val = f"{r['val_mean_over_tasks']:.3f}" if "val_mean_over_tasks" in r else "-"
        print(f"{a:<{width}} {val:>9}" + "".join(f"{r['tasks'][t]['mean']:>9.3f} ± {r['tasks'][t]['std']:.3f}"
                                                 for t in tasks))
    chosen = result["chosen"]
    print(f"chosen: {chosen['arm']} (on {chosen['on']})" if chosen["arm"] else f"chosen: {chosen['on']}")
    if chosen.get("tied"):
        print(f"  tied on validation with: {', '.join(chosen['tied'])} (the first listed is kept)")


if __name__ == "__main__":
    sys.exit(main())
