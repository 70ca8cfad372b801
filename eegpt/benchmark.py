"""``eegpt benchmark NAME --source DIR --workdir W [--seeds 0 1 2]``: a real dataset, its standard
protocol, the model beside the peers a user would pick instead, all scored on the same windows by
the same metrics.

Each protocol prepares the dataset from the folder a user downloaded and assigns windows to
train / val / test. Per seed and fold it fine-tunes from the foundation ETE the package ships
(``eegpt.foundation``; where it saw a subject the protocol selects on or scores, or with ``--ete
per-dataset``, each fold pretrains its own on its training windows only; ``--ete DIR`` reuses one)
with the demo's recipe (classical views beside the ETE,
the readout started as a logistic regression whose views and C are chosen on the validation
subjects, or by cross-validation over the training subjects where the protocol has none). The peers — the
protocol's classical baselines, and braindecode's EEGNet and ShallowFBCSPNet when the ``peers``
extra is installed — are fitted on the same training windows and selected on the same validation
subjects (``eegpt.baseline``):

- ``eegmat``: train subjects 00–25, select on 26–30, score on 31–35. A download without 31–35
  (``../shared/data`` stops at 30) is scored on 26–30 with no validation subjects, and
  ``results.json`` says so: the regressions' settings (the model's views and C, the peers' C and
  CSP components) are then chosen by cross-validation grouped by subject over the training
  subjects, the fine-tuned graph keeps its last step and the networks their last epoch. Peers: band
  power, Riemannian tangent space.
- ``eegmmidb``: imagined left vs right fist (runs 4, 8, 12), train S001–S008, select on S009–S011,
  score on S012–S023; without S012–S023, scored on S009–S011 with no validation subjects (the
  EEGMAT rule). Peers: band power, CSP + LDA, Riemannian tangent space.
- ``eegmmidb-s001``: subject S001 alone, train on runs 4 and 8, score on run 12 (no validation run).
- ``n170`` / ``p300``: eeg-notebooks (Muse), leave one subject out (every subject scored once, the
  others training). Peers: band power, ERP bins, Riemannian tangent space. 1-s trials hold one 1-s token, so the ETE here
  uses 0.5-s tokens (``token_len=128``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from eegpt.errors import EEGInputError, atomic_write, keep, kept
from eegpt.protocols import PROTOCOLS, Protocol, check_ete_for, folds

PUBLISHED = {"eegmat": {"EEGNet": 0.600, "NeuroLM": 0.657, "EEGPT-Base": "0.660 ± 0.086"}}


def _score(labels, probs, present) -> dict:
    """Metrics over the protocol's classes only: probabilities renormalised over the classes
    trained on (a head of a 4-class card scored on a 2-class protocol must not pick the others)."""
    from eegpt.metrics import classification

    p = probs[:, present]
    return classification(np.searchsorted(present, labels), p / np.maximum(p.sum(1, keepdims=True), 1e-12),
                          len(present))


def _summary(runs: list[dict], folds_per_seed: int) -> dict:
    """Per model: each seed's mean over folds, then mean ± std over seeds."""
    from eegpt.metrics import mean_std

    out = {}
    for model in runs[0]["models"]:
        per_seed = []
        for i in range(0, len(runs), folds_per_seed):
            block = [r["models"][model] for r in runs[i:i + folds_per_seed]]
            per_seed.append({k: float(np.mean([b[k] for b in block])) for k in block[0]
                             if isinstance(block[0][k], float)})
        out[model] = mean_std(per_seed)
    return out


def fewer_training_subjects(split: np.ndarray, subject_of: np.ndarray, k: int | None, seed: int) -> np.ndarray:
    """``split`` with only ``k`` of its training subjects left in train (drawn with ``seed``; the
    others' windows unassigned), for label-efficiency curves; None keeps them all."""
    if k is None:
        return split
    subjects = np.unique(subject_of[split == "train"])
    if not 1 <= k <= len(subjects):
        raise EEGInputError(f"--train-subjects {k}: choose 1 to {len(subjects)}, the protocol's training subjects")
    kept_subjects = np.random.default_rng([seed, k]).choice(subjects, k, replace=False)
    out = split.astype(object)  # a fixed-width string array would cut "unassigned" short
    out[(split == "train") & ~np.isin(subject_of, kept_subjects)] = "unassigned"
    return out.astype(str)


def _encoder_for(card: str, store, protocol_folds, ete) -> tuple[Path | None, str]:
    """The ETE a protocol's folds fine-tune from, and why: ``None`` or ``"foundation"`` — the
    shipped foundation ETE, unless it saw a subject some fold selects on or scores (or is not
    installed), then one per fold as ``"per-dataset"`` asks; ``"per-dataset"``: each fold pretrains
    its own on its training windows (``None`` returned); a path: that ETE, checked per fold."""
    from eegpt.foundation import WEIGHTS, PARAMS_FILE

    if ete not in (None, "foundation"):
        return (None, "per-dataset") if ete == "per-dataset" else (Path(ete), "reused")
    if not (WEIGHTS / PARAMS_FILE).exists():
        if ete == "foundation":
            raise EEGInputError(f"{WEIGHTS}: the foundation ETE is not in this installation")
        return None, "per-dataset (the foundation ETE is not installed)"
    seen = json.loads((WEIGHTS / "metrics.json").read_text())
    try:
        for _, split, _ in protocol_folds:
            check_ete_for(card, seen, store.subject_of[np.isin(split, ("val", "test"))])
    except EEGInputError as err:
        if ete == "foundation":
            raise
        return None, f"per-dataset (the foundation ETE cannot be used: {err})"
    return WEIGHTS, "foundation"


def _eegpt_on_fold(s, fold_dir: Path, ete, ete_metrics: dict, proto: Protocol, seed: int, present, preset: str,
                   pretrain_steps: int, finetune_steps: int, batch_size: int, progress: bool) -> dict:
    """EEGPT on one fold (``s``: the store with the fold's splits): from the given ETE — checked to have
    seen none of the subjects the fold selects on or scores — or from one pretrained on the fold's
    training windows alone; fine-tuned with the linear start; scored on the fold's scored subjects,
    with what was kept."""
    from eegpt.evaluate import kept_model
    from eegpt.finetune import FinetuneConfig, finetune
    from eegpt.model import load
    from eegpt.train import PretrainConfig, pretrain

    if ete is not None:
        check_ete_for(proto.card, ete_metrics, s.subject_of[np.concatenate([s.indices("val"), s.indices("test")])])
    else:
        cfg = PretrainConfig(preset=preset, steps=pretrain_steps, batch_size=256, seed=seed,
                             seq_tokens=2 if proto.token_len else 4,
                             model=(("token_len", proto.token_len),) if proto.token_len else (),
                             eval_split="train", eval_batches=5, ckpt_every=max(pretrain_steps, 1))
        pretrain(cfg, [s], fold_dir / "ete", progress=progress, track=False)
        ete = fold_dir / "ete"
    ft = FinetuneConfig(steps=finetune_steps, batch_size=batch_size, eval_every=max(finetune_steps // 5, 1),
                        lr=3e-3, k_neighbours=8, patience=2, graph_layers=1, seed=seed,
                        nodes="ete+bands+rel+erp+lap+laprel", readout="classical", readout_init="lr")
    tuned = finetune(ete, [s], fold_dir / "finetune", ft, progress=progress, track=False)
    scored = load(fold_dir / "finetune").run(s, "test")
    return {**_score(scored["labels"], scored["probs"], present), "kept": kept_model(tuned)[s.name]}


def benchmark(name: str, source, workdir, ete=None, preset: str = "base", pretrain_steps: int = 1000,
              finetune_steps: int = 600, batch_size: int = 32, seeds=(0,), specialists: bool | None = None,
              train_subjects: int | None = None, align_subjects: bool = False, progress: bool = True) -> dict:
    """Run protocol ``name`` for every seed; ``specialists`` None: the networks run when the
    ``peers`` extra is installed. ``train_subjects``: keep that many of the protocol's training
    subjects, drawn anew per seed — the model, its per-fold ETE and every peer then see only
    their windows (validation and scored subjects unchanged). ``align_subjects``: every reader
    (EEGPT and each peer) reads each subject's windows after its Euclidean alignment
    (:func:`eegpt.features.euclidean_alignment`; transductive)."""
    from eegpt.baseline import SPECIALISTS, fit_predict, recipes, specialists_installed
    from eegpt.store import prepare

    if name not in PROTOCOLS:
        raise EEGInputError(f"unknown benchmark {name!r}; choose from {', '.join(PROTOCOLS)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise EEGInputError(f"--seeds {' '.join(map(str, seeds))}: give one or more different seeds")
    if specialists and not specialists_installed():
        raise EEGInputError("the specialist networks need the peers extra: pip install -e \".[peers]\"")
    if train_subjects is not None and train_subjects < 1:  # checked before any preparing
        raise EEGInputError(f"--train-subjects {train_subjects}: keep at least 1 training subject")
    proto = PROTOCOLS[name]
    peers = proto.peers + (tuple(SPECIALISTS) if (specialists_installed() if specialists is None else specialists)
                           else ())
    say = print if progress else (lambda *a, **k: None)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    store = prepare(proto.card, source, workdir / "store", progress=progress)
    if align_subjects:  # the same aligned windows for the model and every peer
        from eegpt.features import euclidean_alignment

        store = store.with_alignment(euclidean_alignment(store))
    protocol_folds = folds(name, store)
    ete, why = _encoder_for(proto.card, store, protocol_folds, ete)
    ete_metrics = json.loads((ete / "metrics.json").read_text()) if ete and (ete / "metrics.json").exists() else {}
    runs, classical = [], {}
    # what a fold's scores depend on besides the seed and the fold: a kept score is reused only for these
    made_for = {"preset": preset, "pretrain_steps": pretrain_steps, "finetune_steps": finetune_steps,
                "batch_size": batch_size, "ete": None if ete is None else str(ete.resolve()), "peers": list(peers),
                "train_subjects": train_subjects, "align_subjects": align_subjects}
    if networks := recipes(peers):
        made_for["recipes"] = networks  # a fold's networks are kept for the recipe they were trained with
    for seed in seeds:
        for fold, split, what in protocol_folds:
            s = store.with_splits(fewer_training_subjects(split, store.subject_of, train_subjects, seed))
            train, val, test = s.indices("train"), s.indices("val"), s.indices("test")
            # its own folder: a fold's ETE and fine-tuning on fewer subjects must not resume the full fold's
            fold_dir = workdir / f"seed-{seed}" / (fold if train_subjects is None else f"{fold}-k{train_subjects}")
            present = np.unique(s.labels[train])  # eegmmidb's imagery runs: 2 of the card's 4
            done = fold_dir / "scores.json"  # each fold's scores kept as made: an interrupted run resumes fold by fold
            trained_on = sorted(np.unique(s.subject_of[train]).tolist())
            if (before := kept(done, made_for)) is not None:
                say(f"seed {seed}, {fold}: scored before, kept ({done})", flush=True)
                runs.append({"seed": seed, "fold": fold, "train_subjects": trained_on, "models": before})
                if train_subjects is None:  # fewer subjects are drawn anew per seed: nothing to share
                    classical.setdefault(fold, {}).update({k: v for k, v in before.items() if k in proto.peers})
                continue
            say(f"seed {seed}, {fold}: {len(train)} training / {len(val)} validation / {len(test)} scored windows",
                flush=True)
            models = {"EEGPT": _eegpt_on_fold(s, fold_dir, ete, ete_metrics, proto, seed, present, preset,
                                              pretrain_steps, finetune_steps, batch_size, progress)}
            for peer in peers:
                if peer in classical.get(fold, {}):  # deterministic: fitted once, reported per seed
                    models[peer] = classical[fold][peer]
                    continue
                say(f"  peer {peer}", flush=True)
                probs, labels, chosen = fit_predict(peer, s, train, test, val, seed=seed)
                models[peer] = {**_score(labels, probs, present), "chosen": chosen}
                if peer not in SPECIALISTS and train_subjects is None:
                    classical.setdefault(fold, {})[peer] = models[peer]
            runs.append({"seed": seed, "fold": fold, "train_subjects": trained_on, "models": models})
            keep(done, made_for, models)
    described = [what for _, _, what in protocol_folds]
    results = {"benchmark": name, "card": proto.card,
               "split": described[0] if len(described) == 1 else
               f"leave-one-subject-out over {len(described)} subjects", "folds": described,
               "classes": [store.classes[c] for c in present],
               "seeds": list(seeds), "peers": list(peers), "train_subjects": train_subjects or "all",
               "subject_alignment": ("Euclidean alignment of each subject's windows, for every reader (transductive: "
                                     "the scored subjects' unlabelled windows set their own)") if align_subjects else None,
               "summary": _summary(runs, len(protocol_folds)), "runs": runs,
               "kept": {f"seed-{r['seed']}/{r['fold']}": r["models"]["EEGPT"].get("kept") for r in runs},
               "models": {f"seed-{r['seed']}/{r['fold']}": str(workdir / f"seed-{r['seed']}" / (
                   r["fold"] if train_subjects is None else f"{r['fold']}-k{train_subjects}") / "finetune" / "model")
                   for r in runs},
               "published_balanced_accuracy": PUBLISHED.get(name, {}),
               "pretraining": why + (f" ({ete})" if ete else f": {preset}, {pretrain_steps} steps on each fold's "
                                                             "training windows"),
               "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write(workdir / "results.json", lambda p: p.write_text(json.dumps(results, indent=2) + "\n"))
    return results


def print_results(r: dict) -> None:
    """The model and its peers side by side, mean ± std over seeds (``eegpt benchmark``)."""
    def value(block, key):
        v = block.get(key)
        return "-" if v is None else f"{v['mean']:.3f} ± {v['std']:.3f}"

    print(f"{r['benchmark']}: {r['split']}; seeds {', '.join(map(str, r['seeds']))}")
    if r.get("subject_alignment"):
        print(r["subject_alignment"])
    keys = ("balanced_accuracy", "cohen_kappa", "weighted_f1", "auroc", "ece")
    print(f"{'':<14} " + " ".join(f"{k:>15}" for k in ("bal. acc.", "kappa", "w. F1", "AUROC", "ECE")))
    for label, block in r["summary"].items():
        print(f"{label:<14} " + " ".join(f"{value(block, k):>15}" for k in keys))
    print("EEGPT's kept model, per seed and fold (the step kept, the views read, whether the ETE was read):")
    for where, k in r.get("kept", {}).items():
        print(f"  {where}: {k['text'] if k else 'not recorded (scored before kept was)'}")
