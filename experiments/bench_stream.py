"""Milliseconds per new second of live EEG (``eegpt stream``) on this machine.

    python experiments/bench_stream.py [--model runs/demo-quick] [--file REC.edf] [--task ER] [--seconds 300] [--json]

Replays a recording as fast as possible through :class:`eegpt.stream.Streamer` and times each
second's work after the first (which compiles): preparing the buffer with the head's recipe
(filters, resampling) and the model (tokens, ETE, graph, head, the out-of-distribution check).
The default is the quick demo's base model (1.46M parameters) on its held-out 32-channel emotion
recording. Target: ≤ 5 ms per new second on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from eegpt.errors import EEGInputError
from eegpt.model import load, model_dir
from eegpt.stream import Streamer, replay


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="runs/demo-quick", help="a model directory or demo workdir")
    p.add_argument("--file", help="a recording (default: the demo's held-out example)")
    p.add_argument("--task", default="ER")
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        model = load(args.model)
        demo = model_dir(args.model).parent
        path = args.file or json.loads((demo / "report.json").read_text())["copilot"]["recording"]
        rec, chunks = replay(path, speed=0)
        streamer = Streamer(model, rec.electrodes, rec.sfreq, task=args.task, source=str(path))
        ticks = []
        for chunk in chunks:
            ticks += streamer.push(chunk)
            if streamer.received_s >= args.seconds:
                break
    except (EEGInputError, FileNotFoundError) as err:
        print(f"bench_stream: {err}", file=sys.stderr)
        return 2
    ms = {k: np.array([t.ms[k] for t in ticks[1:]]) for k in ("preprocess", "model")}
    ms["total"] = ms["preprocess"] + ms["model"]
    r = {"recording": str(path), "channels": len(rec.electrodes), "head": streamer.spec.name,
         "window_s": streamer.spec.window_s, "parameters": sum(int(np.size(x)) for x in
                                                               __import__("jax").tree.leaves(model.params)),
         "seconds": len(ticks) - 1, "buffer_s": streamer.keep / streamer.sfreq,
         **{f"{k}_ms": {"median": round(float(np.median(v)), 2), "p95": round(float(np.percentile(v, 95)), 2)}
            for k, v in ms.items()}}
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{Path(path).name}: {r['channels']} channels, head {r['head']} ({r['window_s']:g}-s window), "
          f"{r['parameters']:,} parameters, {r['seconds']} seconds after the first, buffer {r['buffer_s']:g} s")
    for k in ("preprocess", "model", "total"):
        print(f"  {k:<10} median {r[k + '_ms']['median']:6.2f} ms   p95 {r[k + '_ms']['p95']:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
