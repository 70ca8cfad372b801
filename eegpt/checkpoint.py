"""All checkpoint code: one Orbax CheckpointManager saving the training state (parameters,
optimizer, step), the grain iterator and a JSON of metadata together, so training resumes exactly
where it stopped. Orbax writes each step to a temporary directory and renames it when complete,
so a killed run never leaves a checkpoint that looks complete but is not."""

from __future__ import annotations

from pathlib import Path

import grain
import jax
import orbax.checkpoint as ocp


class Checkpoints:
    """One Orbax ``CheckpointManager`` for a run's state, step, grain iterator and metadata
    (synchronous saves; the newest ``max_to_keep`` steps kept)."""
    def __init__(self, directory, max_to_keep: int = 3):
        self.manager = ocp.CheckpointManager(
            Path(directory).resolve(),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=False),
            item_handlers={"state": ocp.StandardCheckpointHandler(),
                           "data": grain.checkpoint.CheckpointHandler(),
                           "meta": ocp.JsonCheckpointHandler()})

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iterator, meta: dict) -> None:
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iterator),
            meta=ocp.args.JsonSave(meta)))
        self.manager.wait_until_finished()

    def restore(self, step: int, abstract_state, data_iterator):
        """Restore into ``abstract_state`` (shapes, dtypes and shardings) and ``data_iterator``."""
        out = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=grain.checkpoint.CheckpointRestore(data_iterator), meta=ocp.args.JsonRestore()))
        return out["state"], out["meta"]

    def save_state(self, step: int, state, meta: dict) -> None:
        """Only a state pytree and metadata (a fine-tuned graph: nothing left to resume)."""
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        meta=ocp.args.JsonSave(meta)))
        self.manager.wait_until_finished()

    def restore_state(self, step: int | None = None, abstract_state=None):
        """Only the training state (for fine-tuning or embedding extraction from a pretrained ETE)."""
        step = self.latest_step() if step is None else step
        out = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        return out["state"], out["meta"]

    def restore_params(self, abstract_params, step: int | None = None):
        """Only ``state["params"]`` of a step (shapes and dtypes as ``abstract_params``), read with
        Orbax's partial restore: an encoder loaded for fine-tuning or embedding does not read or
        hold its pretraining's optimizer moments (twice the parameters again under AdamW)."""
        step = self.latest_step() if step is None else step
        item = {"params": abstract_params}
        with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as reader:
            out = reader.restore(self.manager.directory / str(step) / "state", args=ocp.args.PyTreeRestore(
                item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item), partial_restore=True))
        # A partial restore leaves what the checkpoint lacks as it was given and reads arrays at
        # their saved shape: check both, rather than hand back a model of the wrong size.
        for (path, want), got in zip(jax.tree_util.tree_leaves_with_path(abstract_params),
                                     jax.tree.leaves(out["params"])):
            if isinstance(got, jax.ShapeDtypeStruct) or not hasattr(got, "shape"):
                raise ValueError(f"the checkpoint has no {jax.tree_util.keystr(path)}")
            if got.shape != want.shape:
                raise ValueError(f"{jax.tree_util.keystr(path)} is {got.shape} in the checkpoint, {want.shape} here")
        return out["params"]

    def close(self) -> None:
        self.manager.close()
