"""The wavelet prompt option, ablated: how much can the copilot's decoder tell from the EEG itself?

    python experiments/copilot_wavelet.py [--model runs/demo-quick] [--steps 300] [--json]

In the product the prompt names the predicted class, so the answer's wording depends on the
class, not on the EEG input. To measure what each EEG input carries, this ablation hides the class
from the prompt (``<class:hidden>``) and trains four decoders on the demo's synthetic windows that
differ only in what they see of the EEG: nothing; the graph's pooled embedding as prefix vectors
(the default input); the EEG Emotion Copilot's "W" — each channel compressed by a wavelet
transform to 16 numbers, projected and averaged over channels into one prefix vector; and its
"W→S" — the same summary written into the prompt as 16 quantised tokens. Scored on the test
subjects' windows: ``content_accuracy``, the share of answers whose description (the finding
phrase) is that of the window's true class, per task and overall, beside chance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np
from flax import nnx

from eegpt.copilot import corpus as CO
from eegpt.copilot import decoder as C
from eegpt.copilot import knowledge as kb
from eegpt.errors import EEGInputError

LENGTH = 16
ARMS = {"no EEG": dict(pooled=False, wavelet=0, wave_text=False),
        "pooled prefix": dict(pooled=True, wavelet=0, wave_text=False),
        "W (wavelet prefix)": dict(pooled=False, wavelet=LENGTH, wave_text=False),
        "W->S (wavelet tokens)": dict(pooled=False, wavelet=0, wave_text=True)}


def cases_from(bank: dict, n: int, seed: int) -> list[CO.Case]:
    out = [c for c in CO.make_corpus(n, seed, bank) if c.eeg is not None]
    return out


def finding_of(text: str, task: str, label_set) -> set[str]:
    names = kb.classes_of(task)
    return {lab for lab in label_set if any(f.lower() in text.lower() for f in names[lab].finding)}


def run_arm(arm: dict, train_cases, test_cases, steps: int, seed: int = 0) -> dict:
    def view(c):  # what this arm lets the decoder see
        return dataclasses.replace(c, eeg=c.eeg if arm["pooled"] else np.zeros_like(c.eeg))

    train_cases = [view(c) for c in train_cases]
    tok = C.train_tokenizer(train_cases, 1200)
    dcfg = C.DecoderConfig(vocab=tok.get_vocab_size(), eeg_features=len(train_cases[0].eeg), wavelet=arm["wavelet"])
    model = C.Decoder(dcfg, rngs=nnx.Rngs(seed))
    data = C.encode_corpus(tok, train_cases, dcfg, hide_class=True, wave_text=arm["wave_text"])
    C.fit(model, data, C.CopilotTrainConfig(steps=steps, seed=seed))
    per_task: dict = {}
    for c in map(view, test_cases):
        prompt = CO.encode_prompt(tok, c, hide_class=True, wave_text=arm["wave_text"])
        ids = C.generate(model, c.eeg, prompt, wave=c.wave if arm["wavelet"] else None)
        found = finding_of(tok.decode(ids, skip_special_tokens=False), c.task, c.probs)
        per_task.setdefault(c.task, []).append(found == {c.label})
    return {"content_accuracy": float(np.mean([x for v in per_task.values() for x in v])),
            "per_task": {t: float(np.mean(v)) for t, v in sorted(per_task.items())}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a demo workdir (default: runs/demo-quick)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--cases", type=int, default=400)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from pathlib import Path

    from eegpt.model import load
    from eegpt.store import open_stores

    try:  # the demo workdir: its model, and the stores its fine-tuning read
        model_dir = Path(args.model or "runs/demo-quick")
        tuned = load(model_dir)
        meta = json.loads((model_dir / "finetune" / "finetune.json").read_text())
        stores = open_stores([d["store"] for d in meta["datasets"]])
    except (EEGInputError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("embedding and compressing the training and test windows ...", flush=True)
    train_bank = CO.eeg_bank(tuned, stores, "train", wavelet=LENGTH)
    test_bank = CO.eeg_bank(tuned, stores, "test", wavelet=LENGTH)
    train_cases = cases_from(train_bank, 16000, seed=0)
    test_cases = cases_from(test_bank, args.cases * 4, seed=99)[: args.cases]
    chance = {t: float(np.mean([1 / len(c.probs) for c in test_cases if c.task == t]))
              for t in sorted({c.task for c in test_cases})}
    rows = {}
    for name, arm in ARMS.items():
        rows[name] = run_arm(arm, train_cases, test_cases, args.steps)
        print(f"  {name}: {rows[name]['content_accuracy']:.3f}", flush=True)
    out = {"model": str(model_dir), "steps": args.steps, "train_pairs": len(train_cases),
           "test_cases": len(test_cases), "chance": chance, "rows": rows}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    tasks = list(chance)
    print(f"\n{'EEG input':<24}{'all':>7}" + "".join(f"{t:>7}" for t in tasks))
    for name, r in rows.items():
        print(f"{name:<24}{r['content_accuracy']:>7.3f}" + "".join(f"{r['per_task'].get(t, float('nan')):>7.3f}" for t in tasks))
    print(f"{'chance':<24}{'':>7}" + "".join(f"{chance[t]:>7.3f}" for t in tasks))
    print(f"(class hidden from the prompt; {len(test_cases)} test-subject windows; {args.steps} steps per decoder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
