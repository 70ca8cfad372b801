"""The deployment table: full, pruned, pruned + LoRA and int8 copilot decoders side by side, as in
the EEG Emotion Copilot, and the model's encoder, graph and heads in float32 and int8.

    python experiments/copilot_pruning.py [--model runs/demo-quick] [--ratio 0.5]
        [--lora-steps 300] [--cases 200] [--json]

Structured pruning (:func:`eegpt.copilot.prune`) drops the given share of attention heads and MLP
channels of every layer by L2 group importance; LoRA (r = 8, α = 32, dropout 0.05, warm-up then
cosine decay) then trains only the low-rank updates on a fresh corpus draw and is merged into the
weights. int8 (:mod:`eegpt.quantize`) stores each weight matrix as int8 with a float32 scale per
output channel and computes in float32 after loading. Each decoder row: parameters, size on disk
(the saved checkpoint, or the int8 file), median answer latency, label faithfulness and
contradictions of the decoder alone (before the guard), how often the guard replaced its answer,
BLEU and bag-of-words cosine against the reference answers. The cases carry the EEG prefix the
copilot answers with in use (a held-out window's pooled embedding, ``copilot_eval.held_out_bank``)
when ``--model`` is a demo workdir. The model rows: size on disk, milliseconds per window and
balanced accuracy on each of the demo's test stores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from flax import nnx
from sklearn.metrics import balanced_accuracy_score

from copilot_eval import copilot_dir, evaluate, held_out_bank  # the scoring script beside this one

from eegpt import quantize as Q
from eegpt.copilot import decoder as C
from eegpt.copilot.corpus import make_corpus
from eegpt.errors import EEGInputError


def disk_bytes(model, tok, int8: bool = False) -> int:
    with tempfile.TemporaryDirectory() as d:
        if int8:
            np.savez_compressed(Path(d) / "q.npz", **Q.quantize_tree(C.parameters(model)))
            return (Path(d) / "q.npz").stat().st_size
        C.save(d, model, tok)
        return sum(f.stat().st_size for f in (Path(d) / "checkpoints").rglob("*") if f.is_file())


def int8(model):
    """The decoder with its weights through int8 and back (what loading a quantized copilot gives)."""
    params = C.parameters(model)
    copy = nnx.clone(model)
    state = nnx.state(copy, nnx.Param)
    nnx.replace_by_pure_dict(state, Q.dequantize_tree(Q.quantize_tree(params), params))
    nnx.update(copy, state)
    copy.eval()
    return copy


def model_rows(work: Path) -> dict:
    """Float32 and int8 models of a demo workdir: size, ms per window, test balanced accuracy."""
    import time

    from eegpt.model import load
    from eegpt.store import Store

    stores = [Store(p) for p in sorted((work / "stores").glob("*")) if (p / "index.json").exists()]
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        quantized = Q.quantize_model(work / "model", Path(d) / "int8")
        for name, path in (("float32", work / "model"), ("int8", quantized)):
            model = load(path)
            row = {"disk_bytes": Q.disk_bytes(path) - Q.disk_bytes(path / "copilot")}
            seconds = windows = 0
            for s in stores:
                model.run(s, "test")  # compiled once before timing
                t0 = time.perf_counter()
                r = model.run(s, "test")
                seconds += time.perf_counter() - t0
                windows += len(r["labels"])
                row[s.task] = float(balanced_accuracy_score(r["labels"], r["probs"].argmax(1)))
            row["ms_per_window"] = 1e3 * seconds / windows
            rows[name] = row
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a copilot directory, a model directory or a demo workdir (default: runs/demo-quick)")
    p.add_argument("--ratio", type=float, default=0.5)
    p.add_argument("--lora-steps", type=int, default=300)
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        full, tok = C.load(copilot_dir(args.model))
    except EEGInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    pruned = C.prune(full, args.ratio)
    pruned.eval()
    lora = C.with_lora(pruned, rank=8, alpha=32.0, dropout=0.05)
    train_cfg = C.CopilotTrainConfig(steps=args.lora_steps, lr=2e-3, warmup=min(50, args.lora_steps // 5), seed=7)
    history = C.fit(lora, C.encode_corpus(tok, make_corpus(3000, seed=7), lora.cfg), train_cfg, wrt=nnx.LoRAParam)
    merged = C.merge_lora(lora)
    merged.eval()
    cases = make_corpus(args.cases, seed=4321, eeg_bank=held_out_bank(args.model))
    rows = {}
    variants = (("full", full, False), (f"pruned {args.ratio:.0%}", pruned, False),
                (f"pruned {args.ratio:.0%} + LoRA", merged, False), ("int8", int8(full), True),
                (f"pruned {args.ratio:.0%} + LoRA, int8", int8(merged), True))
    for name, m, quantized in variants:
        r = evaluate(m, tok, cases)
        rows[name] = {"parameters": C.param_count(m), "disk_bytes": disk_bytes(m, tok, quantized),
                      "median_ms": r["median_ms"],
                      **{k: r["decoder_alone"][k] for k in ("label_faithfulness", "contradictions", "fallback_rate",
                                                            "bleu", "bow_cosine", "rougeL_f1")},
                      "answer_label_faithfulness": r["answer"]["label_faithfulness"]}
    work = Path(args.model or "runs/demo-quick")
    models = model_rows(work) if (work / "stores").is_dir() and (work / "model").is_dir() else {}
    out = {"model": args.model or "the demo's", "ratio": args.ratio, "lora_steps": args.lora_steps, "cases": args.cases,
           "cases_with_eeg": sum(c.eeg is not None for c in cases), "lora_loss": history, "rows": rows,
           "models": models}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'':<22}{'params':>10}{'disk MB':>9}{'ms':>7}{'faithful':>10}{'contra.':>9}{'fallback':>9}{'BLEU':>7}{'cosine':>8}")
    for name, r in rows.items():
        print(f"{name:<22}{r['parameters']:>10,}{r['disk_bytes'] / 1e6:>9.2f}{r['median_ms']:>7.1f}"
              f"{r['label_faithfulness']:>10.3f}{r['contradictions']:>9}{r['fallback_rate']:>9.3f}{r['bleu']:>7.1f}"
              f"{r['bow_cosine']:>8.3f}")
    print(f"(decoder alone, before the faithfulness guard; {args.cases} held-out cases, {out['cases_with_eeg']} with "
          f"a held-out window's EEG prefix; LoRA {args.lora_steps} steps)")
    if models:
        tasks = [k for k in next(iter(models.values())) if k not in ("disk_bytes", "ms_per_window")]
        print(f"\n{'model':<22}{'disk MB':>9}{'ms/window':>11}" + "".join(f"{t:>8}" for t in tasks))
        for name, r in models.items():
            print(f"{name:<22}{r['disk_bytes'] / 1e6:>9.2f}{r['ms_per_window']:>11.2f}"
                  + "".join(f"{r[t]:>8.3f}" for t in tasks))
        print("(encoder, graph and heads without the copilot; balanced accuracy on the demo's test subjects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
