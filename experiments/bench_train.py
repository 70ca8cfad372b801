"""Training-step throughput of the ETE: tokens/s, achieved FLOP/s and MFU on this machine.

Times the jitted, donated pretraining step (the one `eegpt pretrain` runs) after warm-up, takes
the step's FLOPs from XLA's cost analysis, and divides by this machine's measured float32 matmul
peak (a large square matmul timed the same way) for the MFU. With ``--torch`` it also times an
equivalent PyTorch eager implementation of the same shapes (same blocks: RMSNorm, causal attention
with RoPE, SwiGLU; AdamW), if torch is installed (`pip install torch==2.13.0`, not a dependency).

Run:

    python experiments/bench_train.py --preset base --torch                 # f32 and bf16, and PyTorch
    python experiments/bench_train.py --preset large --torch --dtypes f32 bf16
    python experiments/bench_train.py --preset base --loss-check 300 --data runs/synth-baseline/stores/er ...
    python experiments/bench_train.py --preset huge --dtypes bf16 --peak-tflops 989 --json   # a GPU

``--dtypes`` times the step in each compute dtype (parameters stay float32; bf16 runs its matmuls
in bfloat16), and the MFU of each is against the measured matmul peak *in that dtype* (or
``--peak-tflops``, a chip's published peak). ``--loss-check N`` pretrains N steps in each dtype on
the given stores and compares the held-out MSE: bf16 is only worth having where it matches f32
(within 1 %). Results on the 2-core CPU are in docs/guide/pretraining.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from eegpt import sharding
from eegpt.train import PretrainConfig, init_state, make_train_step
from ete.model import VOCAB_SIZE


def matmul_peak(n: int = 2048, repeats: int = 10, dtype=jnp.float32) -> float:
    """Measured matmul FLOP/s of this machine in ``dtype`` (the MFU denominator)."""
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda a, b: a @ b)
    f(a, a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def time_jax(cfg: PretrainConfig, samples: int, electrodes: int, steps: int):
    mesh = sharding.make_mesh()
    graphdef, state, tx, schedule = init_state(cfg)
    sh = sharding.state_shardings(state, mesh)
    state = jax.device_put(state, sh)
    step = make_train_step(cfg, graphdef, tx, schedule, sh, sharding.batch_sharding(mesh))
    b = samples * electrodes
    p = cfg.ete_config().token_len
    rng = np.random.default_rng(0)
    batch = sharding.global_batch({"tokens_BxNxP": (0.1 * rng.standard_normal((b, cfg.seq_tokens, p))).astype(np.float32),
                                   "electrode_B": rng.integers(0, VOCAB_SIZE, b).astype(np.int32),
                                   "dataset_B": np.zeros(b, np.int32)}, mesh)
    flops = step.lower(state, batch).compile().cost_analysis()
    flops = (flops[0] if isinstance(flops, (list, tuple)) else flops).get("flops", float("nan"))
    for _ in range(3):
        state, m = step(state, batch)
    jax.block_until_ready(m)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        state, m = step(state, batch)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(flops), b * cfg.seq_tokens


def time_torch(cfg: PretrainConfig, samples: int, electrodes: int, steps: int, bf16: bool = False) -> float | None:
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.manual_seed(0)
    ec = cfg.ete_config()
    d, h, nh = ec.d_model, ec.ffn_hidden, ec.heads

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = nn.RMSNorm(d, eps=1e-6), nn.RMSNorm(d, eps=1e-6)
            self.qkv, self.out = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
            self.gate, self.up = nn.Linear(d, h, bias=False), nn.Linear(d, h, bias=False)
            self.down = nn.Linear(h, d, bias=False)

        def forward(self, x, cos, sin):
            b, l, _ = x.shape
            q, k, v = self.qkv(self.n1(x)).view(b, l, 3, nh, d // nh).unbind(2)

            def rope(t):
                a, c = t[..., : t.shape[-1] // 2], t[..., t.shape[-1] // 2:]
                return torch.cat([a * cos - c * sin, a * sin + c * cos], -1)
            q, k = rope(q).transpose(1, 2), rope(k).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v.transpose(1, 2), is_causal=True)
            x = x + self.out(y.transpose(1, 2).reshape(b, l, d))
            z = self.n2(x)
            return x + self.down(F.silu(self.gate(z)) * self.up(z))

    class ETETorch(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.electrode = nn.Linear(ec.token_len, d), nn.Embedding(VOCAB_SIZE, d)
            self.summary = nn.Parameter(torch.zeros(d))
            self.blocks = nn.ModuleList([Block() for _ in range(ec.layers)])
            self.norm, self.head = nn.RMSNorm(d, eps=1e-6), nn.Linear(d, ec.token_len)

        def forward(self, x, ids):
            b, n, _ = x.shape
            seq = torch.cat([self.electrode(ids)[:, None], self.embed(x), self.summary.expand(b, 1, d)], 1)
            pos = torch.arange(n + 2, dtype=torch.float32)
            half = d // nh // 2
            ang = pos[:, None] * (ec.rope_base ** (-torch.arange(half) / half))[None]
            cos, sin = ang.cos()[None, :, None], ang.sin()[None, :, None]
            for blk in self.blocks:
                seq = blk(seq, cos, sin)
            return self.head(self.norm(seq)[:, :n])

    model = ETETorch()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    b = samples * electrodes
    x = 0.1 * torch.randn(b, cfg.seq_tokens, ec.token_len)
    ids = torch.randint(0, VOCAB_SIZE, (b,))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # bf16 matmuls, f32 weights
            loss = F.mse_loss(model(x, ids).float(), x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def loss_check(preset: str, stores, steps: int, seed: int = 0) -> dict:
    """Held-out MSE after ``steps`` pretraining steps in float32 and in bfloat16 (same data, seed)."""
    import tempfile

    from eegpt.train import pretrain

    out = {}
    for name, bf16 in (("f32", False), ("bf16", True)):
        with tempfile.TemporaryDirectory() as d:
            cfg = PretrainConfig(preset=preset, steps=steps, batch_size=256, seq_tokens=4, bf16=bf16, seed=seed,
                                 ckpt_every=steps, eval_batches=20)
            m = pretrain(cfg, stores, d, progress=False, track=False)
        out[name] = {"val_mse": m["val_mse"], "seconds": m["seconds"]}
    out["relative_difference"] = out["bf16"]["val_mse"] / out["f32"]["val_mse"] - 1
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="base")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--electrodes", type=int, default=32)
    p.add_argument("--tokens", type=int, default=4, help="tokens per electrode sequence")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--dtypes", nargs="+", choices=("f32", "bf16"), default=["f32", "bf16"])
    p.add_argument("--torch", action="store_true", help="also time the PyTorch eager equivalent (f32 and bf16)")
    p.add_argument("--peak-tflops", type=float, help="the chip's peak (default: a measured matmul in each dtype)")
    p.add_argument("--loss-check", type=int, metavar="STEPS", help="pretrain STEPS in f32 and bf16; compare MSE")
    p.add_argument("--data", nargs="+", help="stores for --loss-check")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = {"preset": args.preset, "devices": jax.device_count(), "platform": jax.devices()[0].platform, "runs": {}}
    for dt in args.dtypes:
        cfg = PretrainConfig(preset=args.preset, batch_size=args.samples * args.electrodes,
                             seq_tokens=args.tokens, bf16=dt == "bf16")
        ec = cfg.ete_config()
        step_s, flops, tokens = time_jax(cfg, args.samples, args.electrodes, args.steps)
        peak = args.peak_tflops * 1e12 if args.peak_tflops else matmul_peak(
            dtype=jnp.bfloat16 if dt == "bf16" else jnp.float32)
        run = {"step_s": step_s, "tokens_per_s": tokens / step_s, "flops_per_step": flops,
               "flops_per_s": flops / step_s, "peak_flops_per_s": peak, "mfu": flops / step_s / peak}
        if args.torch:
            t = time_torch(cfg, args.samples, args.electrodes, args.steps, bf16=dt == "bf16")
            run["torch_step_s"] = t
            run["speedup_vs_torch"] = (t / step_s) if t else None
        out["runs"][dt] = run
        out["shape"] = {"d_model": ec.d_model, "layers": ec.layers, "heads": ec.heads, "samples": args.samples,
                        "electrodes": args.electrodes, "tokens": args.tokens, "token_len": ec.token_len}
    if args.loss_check:
        if not args.data:
            p.error("--loss-check needs --data STORE ...")
        out["loss_check"] = loss_check(args.preset, args.data, args.loss_check)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    sh = out["shape"]
    print(f"{args.preset}: d={sh['d_model']} layers={sh['layers']} heads={sh['heads']}, batch {args.samples} samples x "
          f"{args.electrodes} electrodes x {args.tokens} tokens of {sh['token_len']} ({out['platform']})")
    for dt, r in out["runs"].items():
        line = (f"  {dt:>4}: step {r['step_s'] * 1e3:.1f} ms, {r['tokens_per_s']:,.0f} tokens/s, "
                f"{r['flops_per_s'] / 1e9:.1f} GFLOP/s of {r['peak_flops_per_s'] / 1e9:.1f} peak: MFU {r['mfu']:.1%}")
        if args.torch:
            line += ("; PyTorch not installed (pip install torch)" if r["torch_step_s"] is None else
                     f"; PyTorch eager {r['torch_step_s'] * 1e3:.1f} ms -> JAX {r['speedup_vs_torch']:.2f}x")
        print(line)
    if "loss_check" in out:
        lc = out["loss_check"]
        print(f"  held-out MSE after {args.loss_check} steps: f32 {lc['f32']['val_mse']:.5f} "
              f"({lc['f32']['seconds']:.0f} s), bf16 {lc['bf16']['val_mse']:.5f} ({lc['bf16']['seconds']:.0f} s): "
              f"{lc['relative_difference']:+.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
