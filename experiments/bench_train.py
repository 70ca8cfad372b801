"""Training-step throughput of the ETE: tokens/s, achieved FLOP/s and MFU on this machine.

Times the jitted, donated pretraining step (the one `eegpt pretrain` runs) after warm-up, takes
the step's FLOPs from XLA's cost analysis, and divides by this machine's measured float32 matmul
peak (a large square matmul timed the same way) for the MFU. With ``--torch`` it also times an
equivalent PyTorch eager implementation of the same shapes (same blocks: RMSNorm, causal attention
with RoPE, SwiGLU; AdamW), if torch is installed (`pip install torch==2.13.0`, not a dependency).

Run:

    python experiments/bench_train.py --preset base --torch
    python experiments/bench_train.py --preset large --json

Results on the 2-core CPU are in the README.
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


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Measured float32 matmul FLOP/s of this machine (the MFU denominator)."""
    a = jnp.ones((n, n), jnp.float32)
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
                                   "electrode_B": rng.integers(0, 374, b).astype(np.int32),
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


def time_torch(cfg: PretrainConfig, samples: int, electrodes: int, steps: int) -> float | None:
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
            self.embed, self.electrode = nn.Linear(ec.token_len, d), nn.Embedding(374, d)
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
    ids = torch.randint(0, 374, (b,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x, ids), x)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="base")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--electrodes", type=int, default=32)
    p.add_argument("--tokens", type=int, default=4, help="tokens per electrode sequence")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--torch", action="store_true", help="also time the PyTorch eager equivalent")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    cfg = PretrainConfig(preset=args.preset, batch_size=args.samples * args.electrodes,
                         seq_tokens=args.tokens, bf16=args.bf16)
    ec = cfg.ete_config()
    step_s, flops, tokens = time_jax(cfg, args.samples, args.electrodes, args.steps)
    peak = matmul_peak()
    out = {"preset": args.preset, "step_s": step_s, "tokens_per_s": tokens / step_s,
           "flops_per_step": flops, "flops_per_s": flops / step_s, "peak_flops_per_s": peak,
           "mfu": flops / step_s / peak,
           "shape": {"d_model": ec.d_model, "layers": ec.layers, "heads": ec.heads, "samples": args.samples,
                     "electrodes": args.electrodes, "tokens": args.tokens, "token_len": ec.token_len},
           "devices": jax.device_count(), "platform": jax.devices()[0].platform}
    if args.torch:
        t = time_torch(cfg, args.samples, args.electrodes, args.steps)
        out["torch_step_s"] = t
        out["speedup_vs_torch"] = (t / step_s) if t else None
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{args.preset}: d={ec.d_model} layers={ec.layers} heads={ec.heads}, batch {args.samples} samples x "
          f"{args.electrodes} electrodes x {args.tokens} tokens of {ec.token_len}")
    print(f"  step {step_s * 1e3:.1f} ms, {out['tokens_per_s']:,.0f} tokens/s, {out['flops_per_s'] / 1e9:.1f} GFLOP/s "
          f"achieved of {peak / 1e9:.1f} GFLOP/s measured f32 matmul peak: MFU {out['mfu']:.1%}")
    if args.torch:
        if out["torch_step_s"] is None:
            print("  PyTorch not installed: pip install torch==2.13.0")
        else:
            print(f"  PyTorch eager: {out['torch_step_s'] * 1e3:.1f} ms per step -> JAX is "
                  f"{out['speedup_vs_torch']:.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
