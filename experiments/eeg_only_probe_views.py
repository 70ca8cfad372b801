"""Which views the EEG-only decoder's probe may read: the heads' own candidates, or the ETE's offered too.

    python experiments/eeg_only_probe_views.py --model DIR [--json]

``--model``: a demo workdir or a fine-tuning workdir, as ``eeg_only_eval.py``. Per head, the
decoder's linear probe (:func:`eegpt.copilot.instruct.linear_probe`, on the windows' EEG tokens,
chosen on the same subjects the decoder chooses on) fitted two ways: with the views the head's
linear start was offered (``finetune.json``: the classical views with ``--readout classical``, and
its ``--readout-search``), and with the ETE's features offered beside them
(``combinations+ete``). Each is scored on the scored (test) windows beside the head. The probe is
the decoder's class where the transformer's own reading has weight 0, so this scores that class
without training a decoder. A choice between the two is made on a development corpus, never on the
corpus reported.
"""

from __future__ import annotations

import argparse
import json
import sys

from eegpt.copilot import instruct
from eegpt.errors import EEGInputError
from eegpt.model import model_dir


def head_arm(finetune: dict, all_views: list, windows: list[dict]) -> tuple[list, str, list[dict]]:
    """The views and search the heads' linear start was offered, and ``windows`` cut to those views'
    columns (the ETE's come first in a token; ``--readout classical`` leaves them out)."""
    ft = finetune["finetune"]
    if ft.get("readout") == "all" or all_views[0][0] != "ete":
        return all_views, ft.get("readout_search", "combinations"), windows
    cut = all_views[0][1]
    windows = [dict(w, tokens=(w["tokens"][0][..., cut:], *w["tokens"][1:])) for w in windows]
    return all_views[1:], ft.get("readout_search", "combinations"), windows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a demo workdir or a fine-tuning workdir")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        model, stores = instruct.model_stores(args.model)
    except EEGInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finetune = instruct.finetune_meta(args.model)
    rows = {}
    for s in stores:
        lent = not len(s.indices("val"))
        s = instruct.with_validation(s, instruct.InstructConfig().val_subjects)
        train, val = (instruct.read_windows(model, s, split) for split in ("train", "val"))
        slots = train["tokens"][0].shape[1]
        test = instruct.read_windows(model, s, "test", slots)
        val["tokens"] = instruct.fit_slots(val["tokens"], slots)
        present = sorted(set(train["labels"].tolist()))
        every = instruct.view_columns(model.cfg.nodes, train["tokens"][0].shape[-1])
        arms = {"the head's candidates": head_arm(finetune, every, [train, val, test]),
                "with the ETE offered": (every, "combinations+ete", [train, val, test])}
        row = {"head": instruct.balanced_accuracy(test["labels"], test["head_probs"], present)}
        for arm, (views, search, (tr, va, te)) in arms.items():
            pr = instruct.linear_probe(tr, va, present, views, cross_validate=lent, search=search)
            row[arm] = {"views": "+".join(pr["views"]), "C": pr["C"], "selected_on": pr["selected_on"],
                        "val": pr["val_balanced_accuracy"],
                        "test": instruct.balanced_accuracy(te["labels"], pr["predict"](te["tokens"]), present)}
        rows[s.name] = row
    if args.json:
        print(json.dumps({"model": str(model_dir(args.model)), "rows": rows}, indent=2))
        return 0
    for name, row in rows.items():
        print(f"{name}: head {row['head']:.3f}")
        for arm, r in row.items():
            if arm != "head":
                print(f"  {arm:<24} {r['views']:<28} C {r['C']:<6g} val {r['val']:.3f} test {r['test']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
