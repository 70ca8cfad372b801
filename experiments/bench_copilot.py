"""File -> answer + EMR latency of ``eegpt copilot`` on this machine, after warm-up.

    python experiments/bench_copilot.py [--model runs/demo-quick] [--file REC.edf] [--seconds S] [--runs 30] [--json]

Loads the pipeline once (as a service would), answers the same recording ``--runs`` times after
three warm-up runs (compilation), writing the FHIR Bundle each time, and prints the median of the
whole and of each stage: prediction (reading, preprocessing, ETE + TEG + heads), decoding, EMR (FHIR
validation and writing). The default recording is the demo's held-out example. Target: median ≤ 150 ms on
2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eegpt.copilot import Copilot, emr
from eegpt.errors import EEGInputError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a model directory or demo workdir (default: runs/demo, runs/demo-quick)")
    p.add_argument("--file", help="a recording (default: the demo's held-out example)")
    p.add_argument("--task", default=None)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--seconds", type=float, help="only the first SECONDS of the recording")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        pipe = Copilot(args.model)
        demo = Path(args.model or pipe.dir.parent)
        path = args.file or json.loads((demo / "report.json").read_text())["copilot"]["recording"]

        def once(out):
            r = pipe.ask(path, task=args.task, age=50, sex="F", seconds=args.seconds)
            t0 = time.perf_counter()
            emr.write(r["record"], out)
            r["seconds"]["emr"] = time.perf_counter() - t0
            return r

        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "emr.json"
            for _ in range(3):
                once(out)
            totals, stages = [], []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                r = once(out)
                totals.append(time.perf_counter() - t0)
                stages.append(r["seconds"])
    except (EEGInputError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    res = {"file": str(path), "task": r["task"], "windows": r["windows"], "runs": args.runs,
           "median_ms": float(np.median(totals) * 1000), "p90_ms": float(np.percentile(totals, 90) * 1000),
           "stages_median_ms": {k: float(np.median([s[k] for s in stages]) * 1000) for k in stages[0]}}
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{Path(path).name}: {r['task']}, {r['windows']} windows, {args.runs} runs after warm-up")
    print(f"median {res['median_ms']:.1f} ms (p90 {res['p90_ms']:.1f})  = "
          + " + ".join(f"{k} {v:.1f}" for k, v in res["stages_median_ms"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
