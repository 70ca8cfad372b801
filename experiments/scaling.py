"""Scaling sweeps: held-out next-token loss against model size and against data size.

Trains a grid of ETE sizes x training-data fractions with the same recipe (each run resumable in
its own folder), then fits power laws with an irreducible term,

    L(N) = a * N^-alpha + c      (N: ETE parameters, at the largest data fraction)
    L(D) = b * D^-beta  + c'     (D: training tokens available, at the largest model)

and writes ``WORKDIR/scaling.json`` plus ``WORKDIR/scaling.png`` (loss vs parameters and loss vs
tokens, points and fits).

CPU grid (the default: 4 widths/depths from 62k to 828k ETE parameters x 3 data fractions,
1,500 steps of 128 four-token sequences each; about 15 minutes on 2 cores). It uses the stores
given, or writes the synthetic corpus (ER, MI, MW, SS) into WORKDIR:

    python experiments/scaling.py --workdir runs/scaling

TPU/GPU grid (EEGPT's four sizes on your prepared stores; add hosts with the usual launcher):

    python experiments/scaling.py --workdir gs-or-local/scaling --grid full \\
        --data stores/eegmat stores/eegmmidb stores/sleep-edf ... --steps 20000 --batch-size 4096 \\
        --mesh 1,8

(``--mesh DATA,FSDP`` as in `eegpt pretrain`; giant needs FSDP, see experiments/README.md.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from eegpt.presets import ete_param_count
from eegpt.store import Store, prepare
from eegpt.synth import write_corpus
from eegpt.train import PretrainConfig, pretrain

# CPU grid: widths and depths between the tiny test model and EEGPT-base.
CPU_MODELS = {"d32-l2": dict(d_model=32, layers=2, heads=2), "d64-l2": dict(d_model=64, layers=2, heads=2),
              "d96-l3": dict(d_model=96, layers=3, heads=4), "d128-l3": dict(d_model=128, layers=3, heads=4)}
FULL_MODELS = {"base": {}, "large": {}, "huge": {}, "giant": {}}


def power_law(x, a, alpha, c):
    return a * np.power(x, -alpha) + c


def fit(xs, ys) -> dict | None:
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    if len(xs) < 3:
        return None
    x0 = xs / xs.min()  # fit on a normalised axis for conditioning
    try:
        with warnings.catch_warnings():  # 3 points for 3 parameters: no covariance, which we do not use
            warnings.simplefilter("ignore", OptimizeWarning)
            (a, alpha, c), _ = curve_fit(power_law, x0, ys, p0=(ys.max() - ys.min() + 1e-6, 0.5, ys.min() * 0.9),
                                         bounds=([0, 0, 0], [np.inf, 5, np.inf]), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return {"a": float(a * xs.min() ** alpha), "alpha": float(alpha), "c": float(c),
            "residual_rms": float(np.sqrt(np.mean((power_law(x0, a, alpha, c) - ys) ** 2)))}


def synthetic_stores(workdir: Path, subjects: int) -> list[Path]:
    corpus = workdir / "corpus"
    if not (corpus / "corpus.json").exists():
        write_corpus(corpus, subjects, seed=0, workers=2)
    # CM's 1-s stimulus windows hold one token: too short for multi-token sequences
    return [prepare(f"synthetic-{t}", corpus, workdir / "stores" / t, progress=False).path
            for t in ("er", "mi", "mw", "ss")]


def train_tokens(cfg: PretrainConfig, stores) -> int:
    """Tokens available for training at this data fraction (all electrodes, whole windows)."""
    total = 0
    for s in stores:
        st = Store(s)
        per_window = cfg.tokens().count(st.window_samples) // cfg.seq_tokens * cfg.seq_tokens
        n_train = len(st.indices("train"))
        electrodes = np.mean([len(st.montages[m]) for m in st.montage_of[st.indices("train")]])
        total += int(round(n_train * cfg.data_fraction)) * electrodes * per_window
    return int(total)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = [(axes[0], "ete_params", "data_fraction", "fit_params", "N", "ETE parameters N"),
              (axes[1], "train_tokens", "model", "fit_data", "D", "training tokens available D")]
    for ax, x_key, group_key, fit_key, symbol, xlabel in panels:
        groups = sorted({r[group_key] for r in runs}, key=lambda g: g if group_key == "data_fraction"
                        else min(r["ete_params"] for r in runs if r[group_key] == g))
        for g in groups:
            pts = sorted((r[x_key], r["val_mse"]) for r in runs if r[group_key] == g)
            ax.plot(*zip(*pts), "o-", alpha=0.7,
                    label=f"data fraction {g:g}" if group_key == "data_fraction" else g)
        p = results[fit_key]
        if p:
            x = np.geomspace(min(r[x_key] for r in runs), max(r[x_key] for r in runs), 50)
            ax.plot(x, p["a"] * x ** -p["alpha"] + p["c"], "k--",
                    label=f"fit: {p['a']:.3g}·{symbol}^-{p['alpha']:.2f} + {p['c']:.4f}")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("held-out next-token MSE")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"ETE scaling ({results['steps']} steps x {results['batch_size']} sequences each)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("runs/scaling"))
    p.add_argument("--data", nargs="*", type=Path, help="stores (default: a synthetic corpus in WORKDIR)")
    p.add_argument("--grid", choices=("cpu", "full"), default="cpu")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    p.add_argument("--subjects", type=int, default=20, help="synthetic corpus size")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seq-tokens", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--mesh", default="0,1")
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    stores = args.data or synthetic_stores(args.workdir, args.subjects)
    models = CPU_MODELS if args.grid == "cpu" else FULL_MODELS
    mesh = tuple(int(v) for v in args.mesh.split(","))
    runs = []
    t0 = time.time()
    for name, over in models.items():
        for frac in args.fractions:
            cfg = PretrainConfig(preset="base" if args.grid == "cpu" else name, model=tuple(over.items()),
                                 steps=args.steps, batch_size=args.batch_size, seq_tokens=args.seq_tokens,
                                 lr=args.lr, warmup=max(1, args.steps // 20), data_fraction=frac,
                                 ckpt_every=args.steps, mesh=mesh)
            run_dir = args.workdir / "runs" / f"{name}-f{frac:g}"
            print(f"[{time.time() - t0:6.0f} s] {name} on {frac:g} of the data ...", flush=True)
            m = pretrain(cfg, stores, run_dir, progress=False, track=False)
            runs.append({"model": name, "data_fraction": frac, "ete_params": ete_param_count(cfg.ete_config()),
                         "train_tokens": train_tokens(cfg, stores), "val_mse": m["val_mse"],
                         "zero_mse": m["zero_mse"], "persistence_mse": m["persistence_mse"],
                         "linear_ar_mse": m.get("linear_ar_mse")})
    top_frac = max(args.fractions)
    biggest = max(runs, key=lambda r: r["ete_params"])["model"]
    by_n = [(r["ete_params"], r["val_mse"]) for r in runs if r["data_fraction"] == top_frac]
    by_d = [(r["train_tokens"], r["val_mse"]) for r in runs if r["model"] == biggest]
    results = {"grid": args.grid, "steps": args.steps, "batch_size": args.batch_size, "runs": runs,
               "fit_params": fit(*zip(*sorted(by_n))), "fit_data": fit(*zip(*sorted(by_d))),
               "seconds": round(time.time() - t0, 1), "stores": [str(s) for s in stores]}
    (args.workdir / "scaling.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.workdir / "scaling.png")
    print(f"\n{'model':<9} {'params':>9} {'fraction':>8} {'tokens':>11} {'val MSE':>9}")
    for r in runs:
        print(f"{r['model']:<9} {r['ete_params']:>9,} {r['data_fraction']:>8g} {r['train_tokens']:>11,} {r['val_mse']:>9.5f}")
    for key, label in (("fit_params", "L(N)"), ("fit_data", "L(D)")):
        f = results[key]
        print(f"{label}: " + (f"{f['a']:.4g} * x^-{f['alpha']:.3f} + {f['c']:.5f} (residual {f['residual_rms']:.2e})"
                              if f else "no fit (too few points or did not converge)"))
    print(f"{results['seconds']} s; wrote {args.workdir / 'scaling.json'} and {args.workdir / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
