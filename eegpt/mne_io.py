"""Opening recordings with MNE: the one place files are handed to MNE's readers, below both
:mod:`eegpt.recording` (any recording) and :mod:`eegpt.datasets` (a dataset's own files that MNE
opens). What MNE raises for a damaged or foreign file becomes one line naming the file; an error of
our own keeps its traceback (:func:`eegpt.errors.from_reader`).
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import mne
import numpy as np

from eegpt.errors import READER_ERRORS, EEGInputError, from_reader

TEXT_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
MNE_SUFFIXES = (".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".set", ".vhdr", ".cnt", ".mff", ".lay", ".cdt",
                ".eeg")  # .lay Persyst, .cdt Curry, .eeg Nihon Kohden (BrainVision's .eeg opens by its .vhdr)


def check_file(path: Path) -> None:
    """Refuse in one line a path that is missing, a folder, empty or unreadable."""
    if not path.exists():
        raise EEGInputError(f"{path}: no such file; check the path")
    if path.is_dir():
        if path.suffix.lower() == ".mff":  # EGI's format is a folder
            return
        raise EEGInputError(f"{path}: is a directory, not a recording; name a file inside it")
    if path.stat().st_size == 0:
        raise EEGInputError(f"{path}: the file is empty (0 bytes); re-download or re-export it")
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise EEGInputError(f"{path}: cannot be opened ({err.strerror or err}); check the file's "
                            "permissions") from None


def check_edf_header(path: Path) -> None:
    """Faults of an EDF/BDF header that MNE reads past (a record duration of 0 becomes 1 s, so the
    rate comes out wrong) or reports obscurely (samples per record of 0)."""
    with open(path, "rb") as f:
        head = f.read(256)
        try:
            n_signals = int(head[252:256])
        except ValueError:
            return  # not a header we can parse: MNE says what it makes of it
        if not 0 < n_signals < 100_000:
            return
        block = f.read(n_signals * 256)
    if len(block) < n_signals * 256:
        raise EEGInputError(f"{path}: truncated: the header describes {n_signals} signals but ends early; "
                            "re-download or re-export it")
    try:
        labels = [block[i * 16:(i + 1) * 16].decode("latin-1").strip() for i in range(n_signals)]
        base = n_signals * 216  # label, transducer, unit, 4 ranges, prefiltering precede the counts
        counts = [block[base + i * 8:base + (i + 1) * 8].decode("latin-1").strip() for i in range(n_signals)]
        duration = float(head[244:252])
    except ValueError:
        return  # not a header we can parse: MNE says what it makes of it
    signals = [(lab, c) for lab, c in zip(labels, counts) if lab not in ("EDF Annotations", "BDF Annotations")]
    if signals and not duration > 0:
        raise EEGInputError(f"{path}: the header's data-record duration is {head[244:252].decode('latin-1').strip()!r} "
                            "s, so the sampling rate is unknown; repair the header or re-export the file")
    bad = [lab for lab, c in signals if not (c.isdigit() and int(c) > 0)]
    if bad:
        raise EEGInputError(f"{path}: the header gives {', '.join(map(repr, bad))} no samples per data record "
                            "(0 or missing); the header is damaged: repair it or re-export the file")


def open_mne(path: Path) -> tuple[mne.io.BaseRaw | mne.BaseEpochs, dict[str, str]]:
    """Open lazily with MNE; a header that disagrees with the file size means a truncated file.
    Returns the raw and {MNE's renamed channel ("EEG Fp1-0"): the name the file repeats}."""
    lower = path.name.lower()
    if not lower.endswith(MNE_SUFFIXES):
        raise EEGInputError(f"{path}: unrecognised file type; expected one of "
                            f"{', '.join(MNE_SUFFIXES + TEXT_SUFFIXES)} or .npz")
    if lower.endswith((".edf", ".bdf")):
        check_edf_header(path)
    if lower.endswith(".eeg") and path.with_suffix(".vhdr").exists():
        raise EEGInputError(f"{path}: a BrainVision data file; read its header {path.with_suffix('.vhdr').name}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                raw = mne.io.read_raw(path, preload=False, verbose="warning")
            except TypeError as err:
                if not (lower.endswith(".set") and "number of trials" in str(err)):
                    raise
                # an EEGLAB epoch file: its epochs end to end, each marked by its condition
                raw = mne.read_epochs_eeglab(path, verbose="warning")
            except READER_ERRORS as err:
                if not lower.endswith(".cnt") or not from_reader(err):
                    raise
                raw = other_cnt(path)
        except READER_ERRORS as err:  # MNE raises many types for a damaged file; all mean the same
            if not from_reader(err):
                raise  # our own code's error (EEGInputError included) goes up as it is
            refuse_truncated(path, caught)
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EEGInputError(f"{path}: cannot be read as {path.suffix.lstrip('.').upper()} "
                                f"({msg}); the file is damaged or not of that format") from None
    refuse_truncated(path, caught)
    repeated: set[str] = set()
    for w in caught:
        found = re.search(r"found duplicates for: (\{.*?\})", str(w.message))
        if found:
            repeated |= ast.literal_eval(found.group(1))
    if not raw.ch_names:
        raise EEGInputError(f"{path}: holds no signal channels (an annotation-only file such as a "
                            "hypnogram?); read the recording it annotates")
    duplicates = {n: orig for n in raw.ch_names for orig in repeated if re.fullmatch(re.escape(orig) + r"-\d+", n)}
    return raw, duplicates


def refuse_truncated(path: Path, caught) -> None:
    """Refuse a file whose header, by MNE's warnings, promises more than the file holds: EDF/BDF
    data records, or a Neuroscan CNT's event table placed beyond the file's end (MNE would read on
    from a recomputed end, giving a shorter recording without saying so)."""
    for w in caught:
        if "does not match the file size" in str(w.message) or "is larger than file size" in str(w.message):
            raise EEGInputError(f"{path}: truncated: the header promises more data than the file holds; "
                                "re-download or re-export it")


def other_cnt(path: Path):
    """A ``.cnt`` MNE's default Neuroscan reading refused: Neuroscan with 16-bit samples (which MNE
    reads only when told), else ANT Neuro's eego format (MNE's reader, with the antio package)."""
    try:
        return mne.io.read_raw_cnt(path, data_format="int16", preload=False, verbose="warning")
    except READER_ERRORS as neuroscan:
        try:
            return mne.io.read_raw_ant(path, preload=False, verbose="warning")
        except (ImportError, *READER_ERRORS) as ant:  # MNE says antio is absent with a RuntimeError
            if isinstance(ant, ImportError) or "antio" in str(ant):
                raise neuroscan from None  # antio absent: the Neuroscan error is the one to show
            raise


def from_mne(inst, name: str):
    """Signals in µV, names, MNE channel types, rate, annotations and subject of an MNE object."""
    if isinstance(inst, mne.BaseEpochs):
        data = inst.get_data(copy=True)  # [n_epochs, C, S]
        n_ep, _, n_s = data.shape
        data = np.concatenate(list(data), axis=1) if n_ep else np.zeros((len(inst.ch_names), 0))
        codes = {v: k for k, v in inst.event_id.items()}
        sf = inst.info["sfreq"]
        ann = mne.Annotations([i * n_s / sf for i in range(n_ep)], [n_s / sf] * n_ep,
                              [codes.get(int(c), str(int(c))) for c in inst.events[:, 2]])
    else:
        try:
            data = inst.get_data()
        except READER_ERRORS as err:
            if not from_reader(err):
                raise
            wanted = err.args[0] if isinstance(err, AssertionError) and err.args else None
            if isinstance(wanted, tuple) and len(wanted) == 2:  # MNE's reader got fewer samples than it sought
                raise EEGInputError(f"{name}: the file ends early (a block of {wanted[0]} samples held "
                                    f"{wanted[1]}); it is truncated or damaged") from None
            raise EEGInputError(f"{name}: cannot read the samples ({err}); the file is damaged") from None
        a = inst.annotations  # made relative to the first sample, without a wall-clock origin
        offset = inst.first_time if a.orig_time is not None else 0.0
        ann = mne.Annotations(a.onset - offset, a.duration, a.description) + trigger_events(inst, data)
    types = inst.get_channel_types()
    # MNE stores volts for EEG; tables and other types are taken as they are.
    scale = np.array([1e6 if t in ("eeg", "eog", "ecg", "emg", "seeg", "misc") else 1.0 for t in types])
    return data * scale[:, None], list(inst.ch_names), types, inst.info["sfreq"], ann


BIOSEMI_TRIGGER_BITS = 0xFFFF  # BioSemi's Status: 16 trigger bits, then the system's (CMS, battery, ...)


def trigger_events(raw, data: np.ndarray) -> mne.Annotations:
    """The codes of the trigger (stim) channels (their rows of ``data``, as read) as events, as
    ``mne.find_events`` reads them: each change to a non-zero code, described by the code. Only for
    formats that mark trials on a trigger channel (a BDF's Status, a FIF's STI channels) and MNE
    objects built in memory; elsewhere a stim channel is MNE's guess from a name ("Trigger" in an
    EDF) and may carry an analog signal. BioSemi sets system bits above its 16 trigger bits
    (Twente's DEAP files), so a BDF's codes are masked."""
    files = [str(f).lower() for f in raw.filenames if f]  # none for an object built in memory
    bdf = any(f.endswith(".bdf") for f in files)
    if files and not (bdf or any(f.endswith((".fif", ".fif.gz")) for f in files)):
        return mne.Annotations([], [], [])
    rows = [k for k, t in enumerate(raw.get_channel_types())
            if t == "stim" and np.array_equal(data[k], np.round(data[k]))]
    if not rows:
        return mne.Annotations([], [], [])
    sfreq = raw.info["sfreq"]
    names = [raw.ch_names[k] for k in rows]
    codes = mne.io.RawArray(data[rows], mne.create_info(names, sfreq, "stim"), verbose="error")
    found = mne.find_events(codes, stim_channel=names, consecutive=True, shortest_event=1, verbose="error",
                            **({"mask": BIOSEMI_TRIGGER_BITS, "mask_type": "and"} if bdf else {}))
    return mne.Annotations(found[:, 0] / sfreq, [0.0] * len(found), [str(int(c)) for c in found[:, 2]])
