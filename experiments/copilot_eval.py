"""Faithfulness and text similarity of the copilot's answers on held-out cases.

    python experiments/copilot_eval.py [--model runs/demo-quick/copilot] [--cases 500] [--json]

Held-out cases are drawn with another seed than the training corpus (new combinations of class,
probabilities, demographics, question and phrasing; the knowledge texts are the same). Reports, for
the product's answer (decoder + faithfulness guard), for the decoder alone and for the templated
reference with another phrasing draw: ``label_faithfulness`` (share of answers naming the
predicted class), ``contradictions`` (answers naming another class), ``uncertain_flagged`` (share of
low-confidence cases whose answer says so), bag-of-words Euclidean distance and cosine similarity
(the EEG Emotion Copilot's measures), BLEU and ROUGE-L against the reference answer.
"""

from __future__ import annotations

import argparse
import json
import sys

from eegpt import copilot as C
from eegpt.train import TrainingError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a copilot directory or a demo workdir (default: the demo's)")
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        model, tok = C.load(args.model)
    except TrainingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    r = {"model": args.model or "the demo's", **C.evaluate(model, tok, C.make_corpus(args.cases, args.seed))}
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    cols = ("label_faithfulness", "contradictions", "uncertain_flagged", "bow_euclidean", "bow_cosine", "bleu",
            "rougeL_f1")
    print(f"{'':<20}" + "".join(f"{c:>19}" for c in cols))
    for row in ("answer", "decoder_alone", "templated_baseline"):
        print(f"{row:<20}" + "".join(f"{r[row][c]:>19.3f}" if isinstance(r[row][c], float) else f"{r[row][c]!s:>19}"
                                     for c in cols))
    print(f"({r['cases']} held-out cases; decoder fell back to the template on {r['decoder_alone']['fallback_rate']:.1%}; "
          f"median {r['median_ms']:.1f} ms per answer; model {r['model']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
