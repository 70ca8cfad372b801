"""Milliseconds per new second of live EEG (``eegpt stream``) on this machine.

    python experiments/bench_stream.py [--model runs/demo-quick] [--file REC.edf] [--task ER] [--seconds 300] [--json]

Replays a recording as fast as possible through :class:`eegpt.stream.Streamer` and times each
second's work after the first (which compiles): preparing the buffer with the head's recipe
(filters, resampling) and the model (tokens, ETE, graph, head, the out-of-distribution check).
The default is the quick demo's base model (1.46M parameters) on its held-out 32-channel emotion
recording. Target: ≤ 5 ms per new second on 2 cores.

Then the last second's work is repeated alone, part by part (preprocessing; the encoder with the
node views; the whole forward pass), and this host's float32 matrix-product rate is measured on the
encoder's own shapes — on a shared host it varies, and it says what the encoder can cost here —
with the model's arithmetic per second (XLA's count) and so the time its matrix products need at
that rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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
    parts = _parts(model, streamer)
    ms = {k: np.array([t.ms[k] for t in ticks[1:]]) for k in ("preprocess", "model")}
    ms["total"] = ms["preprocess"] + ms["model"]
    r = {"recording": str(path), "channels": len(rec.electrodes), "head": streamer.spec.name,
         "window_s": streamer.spec.window_s, "parameters": sum(int(np.size(x)) for x in
                                                               __import__("jax").tree.leaves(model.params)),
         "seconds": len(ticks) - 1, "buffer_s": streamer.keep / streamer.sfreq, **parts,
         **{f"{k}_ms": {"median": round(float(np.median(v)), 2), "p95": round(float(np.percentile(v, 95)), 2)}
            for k, v in ms.items()}}
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{Path(path).name}: {r['channels']} channels, head {r['head']} ({r['window_s']:g}-s window), "
          f"{r['parameters']:,} parameters, {r['seconds']} seconds after the first, buffer {r['buffer_s']:g} s")
    for k in ("preprocess", "model", "total"):
        print(f"  {k:<10} median {r[k + '_ms']['median']:6.2f} ms   p95 {r[k + '_ms']['p95']:6.2f} ms")
    print(f"the last second alone (median of {REPEATS}): preprocess {r['alone_ms']['preprocess']:.2f} ms, "
          f"encoder and node views {r['alone_ms']['encode']:.2f} ms, whole forward pass {r['alone_ms']['forward']:.2f} ms")
    print(f"this host: float32 matrix products at {r['host_gflops']:.0f} GFLOP/s on the encoder's shapes; the "
          f"model's {r['model_mflop']:.0f} MFLOP per second of EEG need {r['model_floor_ms']:.2f} ms at that rate")
    return 0


REPEATS = 200


def _median_ms(f) -> float:
    f()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return round(1e3 * float(np.median(times)), 2)


def _parts(model, streamer) -> dict:
    """The last second's parts timed alone, and the host's GEMM rate on the encoder's shapes."""
    import jax
    import jax.numpy as jnp

    from eegpt.predict import window_batches
    from eegpt.preprocess import preprocess
    from eegpt.recording import Recording

    spec, w = streamer.spec, streamer.spec.window_samples
    end = streamer.ticked * streamer.second
    rec = Recording(streamer.buffer[:, :end - streamer.dropped], streamer.electrodes, streamer.sfreq)
    ready = preprocess(rec, spec.recipe, last=w)
    (batch, _), = window_batches(model, ready, [0], w, 1, len(streamer.electrodes))
    alone = {"preprocess": _median_ms(lambda: preprocess(rec, spec.recipe, last=w)),
             "encode": _median_ms(lambda: jax.block_until_ready(model.encode(model.params["ete"], batch))),
             "forward": _median_ms(lambda: jax.block_until_ready(model._forward(model.params, batch)))}
    # the ETE's feed-forward products: rows = electrodes x positions, d_model -> 2 x hidden -> d_model
    cfg = model.cfg.ete
    rows = batch["tokens_KxNxP"].shape[0] * (batch["tokens_KxNxP"].shape[1] + 2)
    x = jnp.ones((rows, cfg.d_model), jnp.float32)
    up, down = jnp.ones((cfg.d_model, 2 * cfg.ffn_hidden)), jnp.ones((cfg.ffn_hidden, cfg.d_model))
    step = jax.jit(lambda x: jax.lax.fori_loop(0, 12, lambda i, h: 1e-3 * (h @ up)[:, :cfg.ffn_hidden] @ down, x))
    flops = 12 * 2 * rows * cfg.d_model * 3 * cfg.ffn_hidden
    gflops = flops / _median_ms(lambda: jax.block_until_ready(step(x))) / 1e6
    # What one second costs in arithmetic (XLA's count for the compiled one-head pass), and so the
    # least it can take at this host's rate: the floor any streaming trick short of less arithmetic meets
    cost = jax.jit(model._head_scorers[spec.name]).lower(model.params, streamer.batch).compile().cost_analysis()
    mflop = float((cost[0] if isinstance(cost, list) else cost)["flops"]) / 1e6
    return {"alone_ms": alone, "host_gflops": round(gflops, 1), "model_mflop": round(mflop, 1),
            "model_floor_ms": round(mflop / gflops, 2)}


if __name__ == "__main__":
    sys.exit(main())
