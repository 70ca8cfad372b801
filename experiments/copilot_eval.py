"""Faithfulness and text similarity of the copilot's answers on held-out cases.

    python experiments/copilot_eval.py [--model runs/demo-quick] [--cases 500] [--json]

Held-out cases are drawn with another seed than the training corpus (new combinations of class,
probabilities, demographics, question and phrasing; the knowledge texts are the same). Given a demo
workdir (its model and stores), each case of a class the model has a head for carries the EEG
prefix the copilot answers with in use: the graph's pooled embedding of a held-out (test) window of
that class, drawn from the test subjects; the other cases (other cards' classes) get zeros, and the
report says how many had EEG. Reports, for
the decoder alone (the headline: what the model says, with how often the guard had to replace
it), for the product's answer after the faithfulness guard (faithful by construction: the guard
replaces every failing answer with the template) and for the templated reference with another
phrasing draw: ``label_faithfulness`` (share of answers naming the
predicted class), ``contradictions`` (answers naming another class), ``uncertain_flagged`` (share of
low-confidence cases whose answer says so), bag-of-words Euclidean distance and cosine similarity
(the EEG Emotion Copilot's measures), BLEU and ROUGE-L against the reference answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from eegpt.copilot import answer
from eegpt.copilot import knowledge as kb
from eegpt.copilot.corpus import Case, make_corpus
from eegpt.copilot.decoder import load
from eegpt.errors import EEGInputError
from eegpt.model import model_dir


def copilot_dir(given) -> Path:
    """A copilot directory, or the ``copilot/`` of a model directory or demo workdir."""
    given = Path(given or "runs/demo-quick")
    if (given / "tokenizer.json").exists():
        return given
    return model_dir(given) / "copilot"


def held_out_bank(given) -> dict | None:
    """{(task, label): pooled embeddings of the test windows}, from a demo workdir's model and
    stores (None elsewhere: the cases then carry no EEG)."""
    from eegpt.copilot.corpus import eeg_bank
    from eegpt.model import load
    from eegpt.store import Store

    work = Path(given or "runs/demo-quick")
    stores = [Store(p) for p in sorted((work / "stores").glob("*")) if (p / "index.json").exists()]
    if not stores or not (work / "model" / "config.json").exists():
        return None
    return eeg_bank(load(work / "model"), stores, split="test")


def similarity(candidates: list[str], references: list[str]) -> dict:
    """The Copilot paper's bag-of-words Euclidean distance and cosine similarity (mean over pairs),
    corpus BLEU (sacrebleu) and mean ROUGE-L F1 (rouge-score)."""
    import sacrebleu
    from rouge_score import rouge_scorer
    from sklearn.feature_extraction.text import CountVectorizer

    bow = CountVectorizer().fit(candidates + references)
    a, b = bow.transform(candidates).toarray().astype(float), bow.transform(references).toarray().astype(float)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return {"bow_euclidean": float(np.linalg.norm(a - b, axis=1).mean()), "bow_cosine": float(cos.mean()),
            "bleu": float(sacrebleu.corpus_bleu(candidates, [references]).score),
            "rougeL_f1": float(np.mean([rouge.score(r, c)["rougeL"].fmeasure for c, r in zip(candidates, references)]))}


def evaluate(model, tok, cases: list[Case], top_k: int = 0) -> dict:
    """Faithfulness and similarity of the decoder's answers to held-out cases, with the templated
    reference (another phrasing draw) scored the same way beside it."""
    finals, raws, refs, templ, lat = [], [], [], [], []
    fallback = 0
    for i, c in enumerate(cases):
        t0 = time.perf_counter()
        out = answer(model, tok, c, top_k=top_k, seed=i)
        lat.append(time.perf_counter() - t0)
        fallback += out["fallback"]
        finals.append(out["text"])
        raws.append(kb.fill(out["decoder_text"], c.task, c.label, c.probs, c.age, c.sex))
        refs.append(kb.fill(c.answer, c.task, c.label, c.probs, c.age, c.sex))
        other = kb.reference(c.task, c.label, c.probs, c.question, np.random.default_rng(10_000 + i))
        templ.append(kb.fill(other, c.task, c.label, c.probs, c.age, c.sex))

    def faith(texts):
        checks = [kb.faithfulness(t, c.task, c.label, c.probs) for t, c in zip(texts, cases)]
        low = [k for k, c in zip(checks, cases) if max(c.probs.values()) < kb.UNCERTAIN_BELOW]
        return {"label_faithfulness": float(np.mean([k["names_prediction"] for k in checks])),
                "contradictions": int(sum(k["contradiction"] for k in checks)),
                "uncertain_flagged": float(np.mean([k["says_uncertain"] for k in low])) if low else None}

    return {"cases": len(cases), "answer": {**faith(finals), **similarity(finals, refs)},
            "decoder_alone": {**faith(raws), **similarity(raws, refs), "fallback_rate": fallback / len(cases)},
            "templated_baseline": {**faith(templ), **similarity(templ, refs)},
            "median_ms": float(np.median(lat) * 1000)}



def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a copilot directory, a model directory or a demo workdir (default: runs/demo-quick)")
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        model, tok = load(copilot_dir(args.model))
    except EEGInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    bank = held_out_bank(args.model)
    cases = make_corpus(args.cases, args.seed, bank)
    r = {"model": args.model or "the demo's", "cases_with_eeg": sum(c.eeg is not None for c in cases),
         **evaluate(model, tok, cases)}
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    cols = ("label_faithfulness", "contradictions", "uncertain_flagged", "bow_euclidean", "bow_cosine", "bleu",
            "rougeL_f1")
    rows = {"decoder_alone": "decoder alone", "answer": "after the guard *",
            "templated_baseline": "template, redrawn"}
    print(f"{'':<20}" + "".join(f"{c:>19}" for c in cols))
    for row, label in rows.items():
        print(f"{label:<20}" + "".join(f"{r[row][c]:>19.3f}" if isinstance(r[row][c], float)
                                       else f"{r[row][c]!s:>19}" for c in cols))
    d = r["decoder_alone"]
    print(f"headline: the decoder alone named the predicted class in {d['label_faithfulness']:.3f} of "
          f"{r['cases']} answers with {d['contradictions']} contradictions; it fell back to the template on "
          f"{d['fallback_rate']:.1%}")
    print("* 1.000 and 0 contradictions after the guard hold by construction: the guard replaces every answer "
          "that fails the check with the template")
    print(f"({r['cases']} held-out cases, {r['cases_with_eeg']} with a held-out window's EEG prefix; "
          f"median {r['median_ms']:.1f} ms per answer; model {r['model']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
