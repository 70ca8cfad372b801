"""One small tracker interface: TensorBoard (tensorboardX) on process 0, nothing elsewhere or in tests."""

from __future__ import annotations


class NullTracker:
    """A tracker that records nothing (tracking off, or not the first process)."""
    def scalars(self, values: dict, step: int) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardTracker(NullTracker):
    """Scalars to TensorBoard event files in ``logdir`` (tensorboardX)."""
    def __init__(self, logdir):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(logdir))

    def scalars(self, values: dict, step: int) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, float(value), step)

    def close(self) -> None:
        self.writer.close()


def make_tracker(logdir, enabled: bool = True):
    """TensorBoard on the first process when ``enabled``, else nothing."""
    import jax

    return TensorBoardTracker(logdir) if enabled and jax.process_index() == 0 else NullTracker()
