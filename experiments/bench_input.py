"""Input pipeline throughput: samples/s and tokens/s of the graph and pretraining pipelines.

Writes a small synthetic corpus and prepares it (unless ``--stores`` are given), then times the
grain pipelines on one process after a warm-up.

Run (about a minute on 2 cores):

    python experiments/bench_input.py [--stores STORE ...] [--batches 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from eegpt.pipeline import graph_batches, pretrain_batches
from eegpt.store import Store, prepare
from eegpt.synth import write_corpus


def _time(it, batches: int, key: str) -> tuple[float, int, int]:
    for _ in range(5):  # warm-up
        next(it)
    t0 = time.perf_counter()
    samples = tokens = 0
    for _ in range(batches):
        b = next(it)
        x = b[key]
        samples += x.shape[0]
        if key == "tokens_BxExNxP":
            tokens += int((b["mask_BxE"].sum(1) * b["n_tokens_B"]).sum())
        else:
            tokens += x.shape[0] * x.shape[1]
    return time.perf_counter() - t0, samples, tokens


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stores", nargs="*", type=Path)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.stores:
            stores = [Store(s) for s in args.stores]
        else:
            tmp = Path(tmp)
            write_corpus(tmp / "corpus", subjects=4, seed=0, workers=2)
            stores = [prepare(f"synthetic-{t}", tmp / "corpus", tmp / t, progress=False)
                      for t in ("er", "mi", "mw", "ss", "cm")]
        kw = dict(shard_index=0, shard_count=1, seed=0)
        results = {}
        graph = [s for s in stores if s.task != "SS"]  # 4-s windows share a token count
        secs, n, tok = _time(iter(graph_batches(graph, None, args.batch_size, **kw)), args.batches,
                             "tokens_BxExNxP")
        results["graph"] = {"samples_per_s": n / secs, "tokens_per_s": tok / secs,
                            "batch_size": args.batch_size, "stores": [s.name for s in graph]}
        secs, n, tok = _time(iter(pretrain_batches(stores, None, args.batch_size * 16, seq_tokens=1, **kw)),
                             args.batches, "tokens_BxNxP")
        results["pretrain"] = {"sequences_per_s": n / secs, "tokens_per_s": tok / secs,
                               "batch_size": args.batch_size * 16, "stores": [s.name for s in stores]}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        g, q = results["graph"], results["pretrain"]
        print(f"graph batches    {g['samples_per_s']:9.0f} samples/s  {g['tokens_per_s']:10.0f} tokens/s  (batch {g['batch_size']})")
        print(f"pretrain batches {q['sequences_per_s']:9.0f} electrode sequences/s  {q['tokens_per_s']:10.0f} tokens/s  (batch {q['batch_size']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
