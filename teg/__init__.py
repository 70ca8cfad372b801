"""Task-shared Electrode Graph: graph attention over a recording's electrodes, with task heads."""

from teg.model import TEG, TEGConfig, electrode_edges

__all__ = ["TEG", "TEGConfig", "electrode_edges"]
