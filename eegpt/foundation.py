"""The foundation ETE: one encoder pretrained on every real recording the project can prepare,
never on a subject a benchmark holds out, shipped with the package for every fine-tuning to start
from (``eegpt finetune --ete foundation``).

``eegpt pretrain --recipe foundation --source DATA --workdir W`` reads each dataset of ``SOURCES``
found under ``DATA`` (``../shared/data`` in this repository's layout, or a folder ``eegpt fetch``
filled) whole — every recording its card's files match, labelled or not, tiled by the card's
windows (``prepare --continuous``) — and pretrains the ETE on them. The subjects a benchmark holds
out (:data:`eegpt.protocols.HELD_OUT`) are never read; of the others, the highest-numbered subject
of each dataset is kept apart to score the held-out next-token MSE. ``--export DIR`` writes the
encoder as the package ships it: float16 parameters, its config, its metrics and a model card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from eegpt.errors import EEGInputError, TrainingError, atomic_dir
from eegpt.protocols import HELD_OUT

# The datasets the recipe reads: card -> its folder under the data root. Leave-one-subject-out
# datasets (eeg-notebooks) are left out: every subject is some fold's test subject.
SOURCES = {"eegmat": "MW/eegmat", "eegmmidb": "MI/eegmmidb"}
WEIGHTS = Path(__file__).resolve().parent / "weights" / "foundation"
PARAMS_FILE = "params-float16.npz"


def resolve(ete) -> Path:
    """A pretraining workdir, an exported encoder, or ``"foundation"``: the one shipped here."""
    if str(ete) != "foundation":
        return Path(ete)
    if not (WEIGHTS / PARAMS_FILE).exists():
        raise EEGInputError(f"{WEIGHTS}: the foundation ETE is not in this installation; build it with eegpt "
                            "pretrain --recipe foundation --source DATA --workdir W --export " + str(WEIGHTS))
    return WEIGHTS


def pretraining_split(store) -> np.ndarray:
    """Every window's part in pretraining: "train", "val" (the held-out next-token MSE is scored on
    the highest-numbered subject not held out) or "unassigned" (a benchmark's held-out subject:
    never read). Labels play no part: the store is continuous."""
    held = HELD_OUT.get(store.name, set())
    subjects = sorted(set(store.subject_of.tolist()), key=lambda s: (len(s), s))
    if held == "every":
        raise TrainingError(f"{store.path}: every subject of {store.name} is a benchmark's test subject")
    eligible = [s for s in subjects if not (s.isdigit() and int(s) in held)]
    if len(eligible) < 2:
        raise TrainingError(f"{store.path}: {len(eligible)} subject(s) not held out by a benchmark; the recipe "
                            "needs two (one to train on, one to score the held-out MSE)")
    part = {s: "unassigned" for s in subjects}
    part.update({s: "train" for s in eligible[:-1]})
    part[eligible[-1]] = "val"
    return np.asarray([part[s] for s in store.subject_of.tolist()])


def foundation_stores(source, workdir, progress: bool = True, prepared: bool = False) -> list:
    """The continuous stores of every dataset of ``SOURCES`` under ``source``, split for pretraining
    (``prepared``: already written by another process, only opened)."""
    from eegpt.store import Store, prepare

    source, workdir = Path(source), Path(workdir)
    found = {card: source / folder for card, folder in SOURCES.items() if (source / folder).is_dir()}
    if not found:
        raise EEGInputError(f"{source}: none of {', '.join(str(source / f) for f in SOURCES.values())} is there; "
                            "pass the folder that holds the datasets (../shared/data)")
    stores = []
    for card, folder in found.items():
        out = workdir / "stores" / card
        store = Store(out) if prepared else prepare(card, folder, out, progress=progress, continuous=True)
        stores.append(store.with_splits(pretraining_split(store)))
    return stores


def recipe_stores(source, workdir, progress: bool = True) -> list:
    """:func:`foundation_stores` in every process: the first prepares them in ``workdir/stores``,
    the others open them once written (what the foundation ETE and NeuroLM's tokenizer read)."""
    from eegpt import sharding

    sharding.initialize_distributed()
    if sharding.is_primary():
        stores = foundation_stores(source, workdir, progress)
    sharding.barrier("foundation stores prepared")
    return stores if sharding.is_primary() else foundation_stores(source, workdir, prepared=True)


def describe(stores, cfg, metrics: dict) -> dict:
    """The model card's facts: the data (recordings, subjects, hours, windows, tokens), the steps
    and the held-out next-token MSE beside its references."""
    data = {}
    for s in stores:
        parts = {p: int((s.split_of == p).sum()) for p in ("train", "val", "unassigned")}
        subjects = {p: sorted(set(s.subject_of[s.split_of == p].tolist())) for p in ("train", "val", "unassigned")}
        files = {s.file_of[i] for i in np.flatnonzero(s.split_of == "train")}
        data[s.name] = {"recordings_trained_on": len(files), "windows": parts, "subjects": subjects,
                        "hours_trained_on": round(parts["train"] * s.index["stride_s"] / 3600, 2),
                        "electrodes": len(s.index["electrodes"]), "window_s": s.index["window_s"]}
    tokens = cfg.steps * cfg.batch_size * (cfg.seq_tokens if cfg.mode == "electrode" else 1)
    return {"recipe": "foundation", "preset": cfg.preset, "steps": cfg.steps, "batch_size": cfg.batch_size,
            "seq_tokens": cfg.seq_tokens, "token_s": cfg.tokens().token_len / stores[0].index["sfreq"],
            "tokens_seen": tokens, "data": data,
            "objective": "next-code cross-entropy" if cfg.targets else "next-token MSE", "targets": cfg.targets,
            "held_out_mse": {k: metrics[k] for k in ("val_mse", "zero_mse", "persistence_mse", "linear_ar_mse")
                             if k in metrics},
            "held_out_codes": {k: metrics[k] for k in ("val_ce", "unigram_ce", "val_accuracy", "repeat_accuracy")
                               if k in metrics},
            "subjects_seen": metrics.get("subjects_seen"), "never_read": {c: sorted(map(str, v)) if v != "every"
                                                                          else "every" for c, v in HELD_OUT.items()}}


def model_card(facts: dict) -> str:
    """The model card in Markdown."""
    mse, codes = facts["held_out_mse"], facts.get("held_out_codes")
    lines = ["# The foundation ETE", "",
             f"A {facts['preset']} ETE pretrained {facts['steps']:,} steps ({facts['tokens_seen']:,} tokens of "
             f"{facts['token_s']:g} s, one electrode each) by {facts.get('objective', 'next-token MSE')}"
             + (f" over the codes of the tokenizer {facts['targets'][3:]}" if facts.get("targets") else "")
             + " on every recording below, read whole "
             "(labelled or not). Built by `eegpt pretrain --recipe foundation`; loaded by `--ete foundation`.", "",
             "| dataset | recordings | subjects trained on | hours | windows | held-out MSE subject | never read |",
             "|---|---|---|---|---|---|---|"]
    for card, d in facts["data"].items():
        lines.append(f"| {card} | {d['recordings_trained_on']} | {len(d['subjects']['train'])} | "
                     f"{d['hours_trained_on']} | {d['windows']['train']:,} | {', '.join(d['subjects']['val'])} | "
                     f"{', '.join(d['subjects']['unassigned']) or '—'} |")
    if codes:
        lines += ["", "Held-out next-code prediction (the validation subjects above), on the same tokens:", "",
                  "| cross-entropy (nats) | training codes' frequencies | accuracy | repeating the previous code |",
                  "|---|---|---|---|", f"| {codes['val_ce']:.3f} | {codes['unigram_ce']:.3f} | "
                  f"{codes['val_accuracy']:.3f} | {codes['repeat_accuracy']:.3f} |", ""]
    else:
        lines += ["", "Held-out next-token MSE (the validation subjects above), on the same tokens:", "",
                  "| ETE | zero | persistence | linear AR |", "|---|---|---|---|",
                  f"| {mse['val_mse']:.5f} | {mse['zero_mse']:.5f} | {mse['persistence_mse']:.5f} | "
                  f"{mse.get('linear_ar_mse', float('nan')):.5f} |", ""]
    lines += [
              "No subject a benchmark holds out for validation or testing was read (`eegpt.protocols.HELD_OUT`); "
              "`metrics.json` lists the subjects it saw, and `eegpt benchmark` refuses this encoder for any "
              "protocol that scores one of them."]
    return "\n".join(lines) + "\n"


def export(workdir, params, out=WEIGHTS) -> Path:
    """Write the encoder of pretraining run ``workdir`` — its ``params``, as
    :func:`eegpt.finetune.load_ete` reads them — as the package ships it: float16 parameters,
    ``config.json``, ``metrics.json`` and ``MODEL_CARD.md`` (with ``card.json``)."""
    import jax

    workdir, out = Path(workdir), Path(out)
    flat = {jax.tree_util.keystr(k): np.asarray(v, np.float16)
            for k, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    with atomic_dir(out) as tmp:
        np.savez_compressed(tmp / PARAMS_FILE, **flat)
        for name in ("config.json", "metrics.json", "MODEL_CARD.md", "card.json"):
            if (workdir / name).exists():
                shutil.copy(workdir / name, tmp / name)
    return out


def read_exported(path: Path, abstract):
    """The float32 parameters of an exported encoder, shaped like ``abstract``."""
    import jax
    import jax.numpy as jnp

    with np.load(path / PARAMS_FILE) as z:
        flat = {k: z[k] for k in z.files}
    leaves = []
    for k, a in jax.tree_util.tree_flatten_with_path(abstract)[0]:
        key = jax.tree_util.keystr(k)
        if key not in flat or flat[key].shape != tuple(a.shape):
            raise TrainingError(f"{path}: {key} missing or of another shape; export the encoder again")
        leaves.append(jnp.asarray(flat[key], jnp.float32))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(abstract), leaves)


def pretrain_foundation(source, workdir, cfg, progress: bool = True) -> dict:
    """Run the recipe (see the module); writes ``workdir/MODEL_CARD.md`` and ``card.json`` beside
    the run's ``metrics.json`` and returns the run's metrics (in every process)."""
    from eegpt.errors import atomic_write
    from eegpt.train import pretrain

    from eegpt import sharding

    workdir = Path(workdir)
    stores = recipe_stores(source, workdir, progress)
    metrics = pretrain(cfg, stores, workdir, progress=progress)
    facts = describe(stores, cfg, metrics)
    if sharding.is_primary():
        atomic_write(workdir / "card.json", lambda t: t.write_text(json.dumps(facts, indent=2) + "\n"))
        atomic_write(workdir / "MODEL_CARD.md", lambda t: t.write_text(model_card(facts)))
    return metrics
