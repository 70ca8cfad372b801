"""Can giant train with FSDP? Compile its training step for a mesh and read XLA's memory plan.

Nothing is allocated: the state and batch are abstract (shapes, dtypes, shardings), the step is
lowered and compiled for the mesh, and XLA's memory analysis gives the bytes each device needs
(arguments = its shard of parameters and optimizer state, plus temporaries). On this CPU the
devices are simulated, so the numbers are the plan a TPU/GPU mesh of the same shape would get
(XLA's GPU/TPU compilers fuse differently; treat them as estimates).

Run (a few minutes of compilation on 2 cores):

    python experiments/giant_fsdp.py --mesh 1,8 --batch-size 512 --seq-tokens 4 [--bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="giant")
    p.add_argument("--mesh", default="1,8", help="DATA,FSDP")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--seq-tokens", type=int, default=4)
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args(argv)
    data, fsdp = (int(v) for v in args.mesh.split(","))
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={data * fsdp}")
    import jax
    import numpy as np

    from eegpt import sharding
    from eegpt.presets import ete_param_count
    from eegpt.train import PretrainConfig, init_state, make_train_step

    cfg = PretrainConfig(preset=args.preset, batch_size=args.batch_size, seq_tokens=args.seq_tokens, bf16=args.bf16)
    mesh = sharding.make_mesh(data, fsdp)
    holder = {}  # init_state also returns python objects (graphdef, optimizer): keep them aside

    def make():
        g, s, t, sch = init_state(cfg)
        holder.update(graphdef=g, tx=t, schedule=sch)
        return s

    abstract = jax.eval_shape(make)
    sh = sharding.state_shardings(abstract, mesh)
    abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, sh)
    step = make_train_step(cfg, holder["graphdef"], holder["tx"], holder["schedule"], sh,
                           sharding.batch_sharding(mesh))
    p_len = cfg.ete_config().token_len
    bsh = sharding.batch_sharding(mesh)
    batch = {"tokens_BxNxP": jax.ShapeDtypeStruct((args.batch_size, args.seq_tokens, p_len), np.float32, sharding=bsh),
             "electrode_B": jax.ShapeDtypeStruct((args.batch_size,), np.int32, sharding=bsh),
             "dataset_B": jax.ShapeDtypeStruct((args.batch_size,), np.int32, sharding=bsh)}
    compiled = step.lower(abstract, batch).compile()
    mem = compiled.memory_analysis()
    n = ete_param_count(cfg.ete_config())
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(abstract))
    out = {"preset": args.preset, "mesh": {"data": data, "fsdp": fsdp}, "ete_params": n,
           "state_bytes_total": int(state_bytes), "state_bytes_per_device_ideal": int(state_bytes / fsdp),
           "argument_bytes_per_device": int(mem.argument_size_in_bytes),
           "temp_bytes_per_device": int(mem.temp_size_in_bytes),
           "output_bytes_per_device": int(mem.output_size_in_bytes),
           "batch_size": args.batch_size, "seq_tokens": args.seq_tokens, "bf16": args.bf16}
    print(json.dumps(out, indent=2))
    gib = 2 ** 30
    print(f"{args.preset}: {n / 1e9:.2f}B ETE parameters; state (params + AdamW) {state_bytes / gib:.1f} GiB in all, "
          f"{mem.argument_size_in_bytes / gib:.2f} GiB of arguments and {mem.temp_size_in_bytes / gib:.2f} GiB of "
          f"temporaries per device on a {data}x{fsdp} mesh", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
