"""Every mesh and sharding rule of the project, in one place.

Mesh axes: ``data`` (replicas that split the batch) and ``fsdp`` (devices that also split the
parameters and optimizer state, ZeRO-3 style; the batch is split over both axes). On one CPU the
mesh is 1 x 1 and every rule is a no-op; on a TPU pod slice or a GPU host the same code runs
with ``--mesh DATA,FSDP``.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

BATCH = P(("data", "fsdp"))


def initialize_distributed() -> None:
    """Multi-host start-up: ``jax.distributed.initialize()`` when launched as one process of
    several, and nothing on a single machine. Several processes are recognised by a TPU pod slice's
    or SLURM's environment (JAX detects the rest), or by ``JAX_COORDINATOR_ADDRESS`` (host:port of
    process 0) with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` — the way to start processes by
    hand, e.g. two on one machine, each with its own CPU device."""
    if jax.distributed.is_initialized():
        return
    env = os.environ
    if "JAX_COORDINATOR_ADDRESS" in env and "JAX_NUM_PROCESSES" in env:
        from eegpt.errors import EEGInputError

        try:
            count, index = int(env["JAX_NUM_PROCESSES"]), int(env.get("JAX_PROCESS_ID", ""))
        except ValueError:
            raise EEGInputError("JAX_NUM_PROCESSES and JAX_PROCESS_ID: give both as whole numbers (this process's "
                                f"id from 0 to JAX_NUM_PROCESSES - 1), not {env.get('JAX_NUM_PROCESSES')!r} and "
                                f"{env.get('JAX_PROCESS_ID')!r}") from None
        if not 0 <= index < count:
            raise EEGInputError(f"JAX_PROCESS_ID {index}: choose 0 to {count - 1} (JAX_NUM_PROCESSES is {count})")
        jax.distributed.initialize(env["JAX_COORDINATOR_ADDRESS"], count, index)
    elif "JAX_COORDINATOR_ADDRESS" in env or int(env.get("SLURM_NTASKS", "1")) > 1 \
            or env.get("TPU_WORKER_HOSTNAMES", "localhost").count(",") > 0:
        jax.distributed.initialize()


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0; the only one on a single machine)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches ``name`` (nothing to wait for on a single machine)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def local_copy(tree):
    """Every array of ``tree`` whole, as numpy, in this process (gathered from the others where it is
    split across processes): what host-side evaluation reads."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(lambda a: np.asarray(multihost_utils.process_allgather(a, tiled=True)), tree)


def float32_pair(values) -> np.ndarray:
    """``values`` (float64) as two float32 rows, high and low part, whose float64 sum gives them
    back to about 48 bits: JAX moves float32 between processes (64-bit types are off), and a
    count or a sum of squares of many tokens needs more than float32's 24."""
    values = np.asarray(values, np.float64)
    high = values.astype(np.float32)
    return np.stack([high, (values - high).astype(np.float32)])


def sum_over_processes(values: np.ndarray) -> np.ndarray:
    """``values`` summed over every process (each holds its own share's sums), in float64."""
    if jax.process_count() == 1:
        return np.asarray(values)
    from jax.experimental import multihost_utils

    gathered = np.asarray(multihost_utils.process_allgather(float32_pair(values)), np.float64)
    return gathered.sum(axis=(0, 1))


def make_mesh(data: int | None = None, fsdp: int = 1) -> jax.sharding.Mesh:
    """A ``data`` x ``fsdp`` mesh: over all devices when ``data`` is None (it takes the rest),
    over the first ``data * fsdp`` devices when both are given (``--mesh 1,1`` on a GPU host runs
    on one device, as asked)."""
    from eegpt.errors import EEGInputError

    n = jax.device_count()
    if fsdp < 1 or (data is not None and data < 1):
        raise EEGInputError(f"--mesh {data or 0},{fsdp}: sizes must be positive")
    want = (data or max(n // fsdp, 1)) * fsdp
    if want > n or (data is None and want != n):
        raise EEGInputError(f"--mesh {data or 0},{fsdp} does not fit the {n} devices here")
    data = want // fsdp
    return jax.make_mesh((data, fsdp), ("data", "fsdp"), devices=jax.devices()[:want],
                         axis_types=(jax.sharding.AxisType.Auto, jax.sharding.AxisType.Auto))


def param_spec(shape: tuple[int, ...], fsdp: int) -> P:
    """FSDP rule: split the largest axis divisible by the ``fsdp`` size; small or indivisible
    arrays (norm scales, biases) stay replicated."""
    if fsdp == 1 or not shape or int(np.prod(shape)) < 1024:
        return P()
    for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
        if shape[axis] % fsdp == 0:
            spec = [None] * len(shape)
            spec[axis] = "fsdp"
            return P(*spec)
    return P()


def state_shardings(abstract_state, mesh):
    """Shardings for a pytree of parameters / optimizer state (by the FSDP rule)."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(tuple(x.shape), fsdp)), abstract_state)


def batch_sharding(mesh) -> NamedSharding:
    """The sharding of a batch: its first axis split over the mesh's data and fsdp axes."""
    return NamedSharding(mesh, BATCH)


def global_batch(local: dict, mesh) -> dict:
    """This host's part of a batch -> global arrays split over (data, fsdp) on the batch axis."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}


# ----------------------------------------------------------------------------- graph batches (fine-tuning)

def host_graph_batch(batch: dict, k: int | None, host: int, hosts: int) -> dict:
    """This host's rows of a global graph batch (``batch``: its own samples), with edges that index
    the *global* batch's nodes: sample ``i`` of host ``h`` is global sample ``h * len(rows) + i``, and
    the padding node is the global one. Every per-sample array (edges included, ``[B, E * fan]``)
    splits over the mesh's batch axis, so each host feeds only its own rows."""
    from eegpt.electrodes import positions
    from eegpt.model import graph_inputs
    from teg import electrode_edges

    if hosts == 1:
        return graph_inputs(batch, k)

    b, e = batch["mask_BxE"].shape
    senders, receivers = electrode_edges(batch["electrodes_BxE"], batch["mask_BxE"], positions(), k)
    pad_local, pad_global = b * e, b * hosts * e

    def to_global(idx):
        return np.where(idx == pad_local, pad_global, idx + host * b * e).reshape(b, -1).astype(np.int32)

    return dict(batch, senders=to_global(senders), receivers=to_global(receivers))


def put_graph_batch(batch: dict, mesh, hosts: int) -> dict:
    """A host's batch as global arrays on the mesh: per-sample arrays split on the batch axis;
    on one host the bucketed edge lists are replicated (they index the whole batch)."""
    split, whole = batch_sharding(mesh), NamedSharding(mesh, P())
    out = {}
    for key, v in batch.items():
        v = np.asarray(v)
        per_sample = not (hosts == 1 and key in ("senders", "receivers"))
        out[key] = jax.make_array_from_process_local_data(split if per_sample else whole, v)
    if hosts > 1:  # flatten the per-sample edge rows into the graph's edge lists
        out["senders"], out["receivers"] = out["senders"].reshape(-1), out["receivers"].reshape(-1)
    return out
