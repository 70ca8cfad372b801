"""EEGPT: an autoregressive EEG generalist with graph heads, in JAX."""

from eegpt.recording import EEGInputError, Recording, read

__all__ = ["EEGInputError", "Recording", "read"]
__version__ = "0.1.0"
