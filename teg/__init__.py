"""Task-shared Electrode Graph: graph attention over a recording's electrodes, with task heads."""

from teg.model import TEGConfig

__all__ = ["TEGConfig"]
