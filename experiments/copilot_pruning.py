"""Full, pruned and pruned + LoRA copilot decoders side by side, as in the EEG Emotion Copilot.

    python experiments/copilot_pruning.py [--model runs/demo-quick/copilot] [--ratio 0.5]
        [--lora-steps 300] [--cases 200] [--json]

Structured pruning (:func:`eegpt.copilot.prune`) drops the given share of attention heads and MLP
channels of every layer by L2 group importance; LoRA (r = 8, α = 32, dropout 0.05, warm-up then
cosine decay) then trains only the low-rank updates on a fresh corpus draw and is merged into the
weights. Each row: parameters, size on disk (the saved checkpoint), median answer latency, label
faithfulness and contradictions of the decoder alone (before the guard), BLEU and bag-of-words
cosine against the reference answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from flax import nnx

from copilot_eval import copilot_dir, evaluate  # the scoring script beside this one

from eegpt.copilot import decoder as C
from eegpt.copilot.corpus import make_corpus
from eegpt.errors import EEGInputError


def disk_bytes(model, tok) -> int:
    with tempfile.TemporaryDirectory() as d:
        C.save(d, model, tok)
        return sum(f.stat().st_size for f in (Path(d) / "checkpoints").rglob("*") if f.is_file())


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
    cases = make_corpus(args.cases, seed=4321)
    rows = {}
    for name, m in (("full", full), (f"pruned {args.ratio:.0%}", pruned), (f"pruned {args.ratio:.0%} + LoRA", merged)):
        r = evaluate(m, tok, cases)
        rows[name] = {"parameters": C.param_count(m), "disk_bytes": disk_bytes(m, tok), "median_ms": r["median_ms"],
                      **{k: r["decoder_alone"][k] for k in ("label_faithfulness", "contradictions", "fallback_rate",
                                                            "bleu", "bow_cosine", "rougeL_f1")},
                      "answer_label_faithfulness": r["answer"]["label_faithfulness"]}
    out = {"model": args.model or "the demo's", "ratio": args.ratio, "lora_steps": args.lora_steps, "cases": args.cases,
           "lora_loss": history, "rows": rows}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'':<22}{'params':>10}{'disk MB':>9}{'ms':>7}{'faithful':>10}{'contra.':>9}{'fallback':>9}{'BLEU':>7}{'cosine':>8}")
    for name, r in rows.items():
        print(f"{name:<22}{r['parameters']:>10,}{r['disk_bytes'] / 1e6:>9.2f}{r['median_ms']:>7.1f}"
              f"{r['label_faithfulness']:>10.3f}{r['contradictions']:>9}{r['fallback_rate']:>9.3f}{r['bleu']:>7.1f}"
              f"{r['bow_cosine']:>8.3f}")
    print(f"(decoder alone, before the faithfulness guard; {args.cases} held-out cases; LoRA {args.lora_steps} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
