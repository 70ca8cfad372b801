"""The two kinds of error a user is told about in one line, and atomic writes.

``EEGInputError``: bad input — a missing or damaged file, an impossible argument, a damaged run or
model directory. ``TrainingError``: training cannot go on (it diverged, or the configuration
cannot work). The CLI prints either as ``eegpt: <message>`` and exits 2; any other exception is a
bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import struct
import uuid
import zipfile
import zlib
from xml.etree.ElementTree import ParseError
from contextlib import contextmanager
from pathlib import Path


class EEGInputError(ValueError):
    """Bad input: the message is one line naming the file, the problem and what to do."""


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, or a configuration that cannot work); one-line message."""


# What the third-party readers (MNE, mne-bids, scipy, numpy, pyxdf) raise for a damaged or foreign
# file. Caught only where such a reader is called, and only when the reader raised it (``from_reader``).
READER_ERRORS = (ValueError, TypeError, KeyError, IndexError, OSError, EOFError, RuntimeError, AssertionError,
                 NotImplementedError, struct.error, zipfile.BadZipFile, zlib.error, pickle.UnpicklingError,
                 ParseError)

_OURS = tuple(str(Path(__file__).resolve().parents[1] / pkg) for pkg in ("eegpt", "ete", "teg"))


def from_reader(err: BaseException) -> bool:
    """Whether ``err`` was raised inside a third-party reader rather than by this project's code:
    the innermost frame of its traceback lies outside the project's packages. A reader's error for a
    damaged file becomes one line naming the file; one raised by our own code is a bug and keeps its
    traceback (``except READER_ERRORS as err: if not from_reader(err): raise``)."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_OURS)


# The OSErrors that say something about the user's machine or paths (a read-only or full disk, a
# folder where a file is wanted): one line. Any other OSError is a bug of ours and keeps its traceback.
USER_OS_ERRORS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EISDIR, errno.ENOTDIR,
                  errno.ENAMETOOLONG, errno.EFBIG, errno.EEXIST}


def atomic_write(path: str | os.PathLike, write) -> None:
    """Write through ``write(tmp_path)`` then rename, so no reader ever sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # keeps the suffix writers look at
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def kept(path: str | os.PathLike, made_for: dict):
    """The result :func:`keep` saved at ``path`` for these same settings ``made_for``, else None:
    how long runs (the demo's peers, a benchmark's folds) resume piece by piece."""
    import json

    path = Path(path)
    saved = json.loads(path.read_text()) if path.exists() else {}
    return saved.get("result") if saved.get("made_for") == made_for else None


def keep(path: str | os.PathLike, made_for: dict, result) -> None:
    """Save a JSON-ready ``result`` at ``path`` with the settings it was made for (atomically)."""
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: p.write_text(json.dumps({"made_for": made_for, "result": result}) + "\n"))


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary directory beside ``path``; on success it replaces ``path`` (an older
    directory there is moved aside first, then removed), on failure it is removed. Readers see the
    old directory or the new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".old-{uuid.uuid4().hex[:8]}-{path.name}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def refuse_overwrite(path: str | os.PathLike, overwrite: bool, what: str = "") -> None:
    """Refuse to replace an existing output unless asked (``--overwrite``), naming what is there."""
    path = Path(path)
    if path.exists() and not overwrite:
        kind = "a folder" if path.is_dir() else "a file"
        raise EEGInputError(f"{path}: already exists ({what or kind}); pass --overwrite to replace it, "
                            "or choose another path")


def check_positive(cfg, *names: str) -> None:
    """Refuse a configuration whose named fields are not positive (``--steps 0``, ``--lr -1``):
    checked when the config is made, before any work."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not value > 0:
            raise EEGInputError(f"--{name.replace('_', '-')} {value}: must be positive")
