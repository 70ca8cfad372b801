"""Answers from EEG alone, scored beside the heads: does the instruction-tuned decoder read the class?

    python experiments/eeg_only_eval.py --model DIR [--copilot DIR] [--answers 20] [--own-readings 0 0.5 1] [--json]

``--model``: a demo workdir, or a fine-tuning workdir (a benchmark's fold:
``runs/bench-eegmat/seed-0/split/finetune``). ``--copilot``: the EEG-only decoder
(``eegpt copilot-train --instruct``; default ``MODEL/copilot-eeg-only``, trained there with
``eegpt.copilot.instruct.RECIPE`` when absent). Each head's store is read with the splits the head was scored on (a
benchmark's protocol, :func:`eegpt.copilot.instruct.model_stores`). Per task, on the scored
(test) windows: the balanced accuracy of the class the decoder states (its answer's first token,
the class hidden from its prompt; over the classes trained on) beside the head's own, and the
gap. For ``--answers`` windows per task it also writes whole answers and reports how many passed
the faithfulness guard (named the class read, no other) without falling back to the template.
``linear_reading`` is the decoder's linear probe alone (its class with the transformer's own reading
at weight 0; none for a decoder without a probe). ``--own-readings``: the class also scored with the
transformer's own reading at these weights beside the probe (``by_own_reading``), the ablation of
the kept weight.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from eegpt.copilot import instruct
from eegpt.copilot import knowledge as kb
from eegpt.copilot.copilot import checked
from eegpt.copilot.corpus import Case
from eegpt.errors import EEGInputError, TrainingError
from eegpt.model import model_dir


def linear_reading(decoder, tok, h: dict, scored: dict, present) -> float | None:
    """The decoder's linear probe alone (:func:`eegpt.copilot.instruct.probe_logits`) on the scored
    windows: what its class would be with the transformer's own reading at weight 0. None without a
    probe."""
    if not decoder.cfg.probe_classes:
        return None
    logits = instruct.probe_logits(decoder, tok, h["task"], h["classes"], scored["tokens"])
    return instruct.balanced_accuracy(scored["labels"], instruct.softmax(logits), present)


def by_own_reading(decoder, tok, h: dict, scored: dict, present, weights) -> dict:
    """The decoder's class on the scored windows were the transformer's own reading weighted each of
    ``weights`` beside its probe (its kept weight is ``decoder.cfg.own_reading``)."""
    kept, out = decoder.cfg, {}
    try:
        for w in weights:
            decoder.cfg = dataclasses.replace(kept, own_reading=w)
            logits = instruct.class_logits(decoder, tok, h["task"], h["classes"], scored["tokens"])
            out[f"{w:g}"] = instruct.balanced_accuracy(scored["labels"], instruct.softmax(logits), present)
    finally:
        decoder.cfg = kept
    return out


def score(model, decoder, tok, meta: dict, store, n_answers: int, seed: int = 0, own_readings=()) -> dict:
    """One head's scored windows: the head's and the decoder's balanced accuracy, and answers."""
    h = meta["heads"][store.name]
    present = [h["classes"].index(c) for c in h["present"]]
    w = instruct.read_windows(model, store, "test", decoder.cfg.eeg_tokens)
    probs = instruct.read_recording(decoder, tok, meta, store.name, w["tokens"])
    head = instruct.balanced_accuracy(w["labels"], w["head_probs"], present)
    eeg_only = instruct.balanced_accuracy(w["labels"], probs, present)
    rng = np.random.default_rng(seed)
    passed = 0
    picks = rng.choice(len(probs), size=min(n_answers, len(probs)), replace=False)
    for i in picks:
        row = {c: float(p) for c, p in zip(h["classes"], probs[i])}
        label = max(row, key=row.get)
        case = Case(h["task"], label, row, kb.QUESTIONS["state"][h["task"]][0])
        raw = instruct.answer_case(decoder, tok, case, tuple(a[i] for a in w["tokens"]))
        passed += not checked(raw, case)["fallback"]
    return {"task": h["task"], "windows": len(w["labels"]), "subjects": len(np.unique(w["subjects"])),
            "head": head, "eeg_only": eeg_only, "gap": eeg_only - head,
            "linear_reading": linear_reading(decoder, tok, h, w, present),
            **({"by_own_reading": by_own_reading(decoder, tok, h, w, present, own_readings)} if own_readings else {}),
            "answers_checked": len(picks), "answers_faithful": passed}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a demo workdir or a fine-tuning workdir")
    p.add_argument("--copilot", help="the EEG-only decoder (default: MODEL/copilot-eeg-only)")
    p.add_argument("--answers", type=int, default=20, help="whole answers written and checked per task")
    p.add_argument("--own-readings", type=float, nargs="+", default=(),
                   help="also score the class with the transformer's own reading at these weights beside the probe "
                        "(an ablation of the kept weight)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        model, stores = instruct.model_stores(args.model)
        where = Path(args.copilot) if args.copilot else model_dir(args.model) / "copilot-eeg-only"
        if not (where / instruct.META).exists():
            print(f"training the EEG-only decoder into {where} ...", file=sys.stderr, flush=True)
            instruct.train_instruct(model, stores, where, *instruct.RECIPE, model_path=model_dir(args.model),
                                    progress=True)
        decoder, tok, meta = instruct.load(where)
        stores = [instruct.with_validation(s, meta["config"]["val_subjects"]) for s in stores]
        rows = {s.name: score(model, decoder, tok, meta, s, args.answers, own_readings=args.own_readings)
                for s in stores}
    except (EEGInputError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = {"model": str(model_dir(args.model)), "copilot": str(where), "reads": meta["reads"],
           "kept_step": meta["kept_step"], "own_reading": meta.get("own_reading", 1.0), "how": instruct.how_read(meta),
           "val_mean_balanced_accuracy": meta["val_mean_balanced_accuracy"],
           "val_subjects": {k: v["val_subjects"] for k, v in meta["heads"].items()},
           "rows": rows, "within_0.03": all(r["gap"] >= -0.03 for r in rows.values())}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'head':<16}{'task':>5}{'windows':>9}{'head BA':>9}{'EEG-only':>10}{'gap':>8}{'probe alone':>14}"
          f"{'answers ok':>12}")
    for name, r in rows.items():
        print(f"{name:<16}{r['task']:>5}{r['windows']:>9}{r['head']:>9.3f}{r['eeg_only']:>10.3f}{r['gap']:>+8.3f}"
              f"{r['linear_reading'] if r['linear_reading'] is not None else float('nan'):>14.3f}{r['answers_faithful']:>7}/{r['answers_checked']}")
    print(f"(the decoder reads {meta['reads']}; {instruct.how_read(meta)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
