"""How the specialist peers are trained: braindecode's networks on a demo's stores under a few
recipes (rate, learning rate, epochs), each selected on the validation subjects and scored on the
test subjects exactly as the demo scores them — so a reader can check that the peers EEGPT is
compared with are not weakened by how they are trained.

    python experiments/specialist_recipe.py --stores runs/demo-seeds/seed-0/stores --tasks er \
        --out runs/specialist-recipe.json

prints (and writes as JSON), per task and recipe: the epoch kept, its validation and test balanced accuracy, and the
training loss at the first and last epoch (a loss still falling fast at the end means the network
was stopped before it fitted).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from eegpt.baseline import SPECIALISTS, Specialist, store_arrays, train_specialist
from eegpt.errors import atomic_write
from eegpt.metrics import classification
from eegpt.store import Store

# braindecode's sizes as they come, at the stores' rate, with the learning rate and epochs the
# networks were trained with before; then the current recipes and one variation of each
RECIPES = {
    "eegnet": {"braindecode defaults, 40 epochs": Specialist("EEGNetv4", 1e-3, None, 40),
               "lr 3e-3, 40 epochs": Specialist("EEGNetv4", 3e-3, None, 40),
               "current": SPECIALISTS["eegnet"]},
    "shallow_fbcsp": {"current": SPECIALISTS["shallow_fbcsp"],
                      "lr x4, 80 epochs": replace(SPECIALISTS["shallow_fbcsp"], lr=4 * SPECIALISTS["shallow_fbcsp"].lr,
                                                  epochs=80)},
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stores", type=Path, required=True, help="a demo's stores folder (one store per task)")
    ap.add_argument("--tasks", nargs="+", default=["er", "mi"])
    ap.add_argument("--networks", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write every row as JSON here")
    args = ap.parse_args(argv)
    rows = []
    for task in args.tasks:
        s = Store(args.stores / task)
        (x_tr, y_tr, _), (x_val, y_val, _), (x_te, y_te, _) = [store_arrays(s, s.indices(p))
                                                               for p in ("train", "val", "test")]
        for net in args.networks:
            for what, spec in RECIPES[net].items():
                t0 = time.perf_counter()
                probs, chosen, history = train_specialist(spec, s.index["sfreq"], x_tr, y_tr, x_val, y_val, x_te,
                                                          len(s.classes), args.seed)
                test = classification(y_te, probs, len(s.classes))["balanced_accuracy"]
                loss = history["train_loss"]
                print(f"{task} {net} [{what}: {spec.sfreq or s.index['sfreq']:g} Hz, lr {spec.lr:g}, "
                      f"{spec.epochs} epochs] epoch kept {chosen['epoch']}, validation "
                      f"{np.max(history['valid_bacc']):.3f}, test {test:.3f}, training loss {loss[0]:.3f} -> "
                      f"{loss[-1]:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
                rows.append({"task": task, "network": net, "recipe": what, **asdict(spec), **chosen,
                             "validation": float(np.max(history["valid_bacc"])), "test": test,
                             "seconds": round(time.perf_counter() - t0, 1), **history})
    if args.out:
        atomic_write(args.out, lambda p: p.write_text(json.dumps(rows, indent=1) + "\n"))


if __name__ == "__main__":
    main()
