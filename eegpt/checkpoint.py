"""All checkpoint code: one Orbax CheckpointManager saving the training state (parameters,
optimizer, step), the grain iterator and a JSON of metadata together, so training resumes exactly
where it stopped. Orbax writes each step to a temporary directory and renames it when complete,
so a killed run never leaves a checkpoint that looks complete but is not."""

from __future__ import annotations

from pathlib import Path

import grain
import orbax.checkpoint as ocp


class Checkpoints:
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

    def close(self) -> None:
        self.manager.close()
