"""Readers for recordings MNE does not open, each returning ``(data [C, T] µV, channel names,
MNE channel types, rate, mne.Annotations)`` for :func:`eegpt.read` to check and name:

- text tables (``.csv``/``.tsv``/``.txt``, optionally gzipped) and ``.npz``; two device formats are
  told by their first line: OpenBCI GUI recordings and Mind Monitor (Muse) CSV;
- XDF, Lab Streaming Layer's recording format (pyxdf).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import mne
import numpy as np

from eegpt.electrodes import classify
from eegpt.errors import READER_ERRORS, EEGInputError, from_reader


def read_table(path: Path, sfreq, ch_names):
    """CSV/TSV/TXT (optionally gzipped) or NPZ tables of µV, one column (CSV) or row (NPZ) per channel."""
    if path.name.lower().endswith(".npz"):
        try:
            # the file opened here, not by np.load, which leaves its handle open when the zip is damaged
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except READER_ERRORS as err:
            if not from_reader(err):
                raise
            raise EEGInputError(f"{path}: cannot be read as NPZ ({err})") from None
        key = next((k for k in ("data", "signals", "X") if k in arrays), None)
        if key is None:
            raise EEGInputError(f"{path}: no 'data' array in the NPZ (keys: {', '.join(arrays)})")
        for k in (key, "sfreq"):
            if k in arrays and not np.issubdtype(arrays[k].dtype, np.number):
                raise EEGInputError(f"{path}: '{k}' holds {arrays[k].dtype} values, not numbers")
        if "sfreq" in arrays and arrays["sfreq"].size != 1:
            raise EEGInputError(f"{path}: 'sfreq' must be one number, got shape {arrays['sfreq'].shape}")
        data = arrays[key].astype(np.float64)
        names = list(ch_names or (arrays["ch_names"].tolist() if "ch_names" in arrays else []))
        rate = sfreq or (float(arrays["sfreq"].reshape(())) if "sfreq" in arrays else None)
        if data.ndim != 2:
            raise EEGInputError(f"{path}: 'data' must be 2-D [channels, samples], got shape {data.shape}")
        if not names:
            raise EEGInputError(f"{path}: no channel names; store 'ch_names' in the NPZ or pass ch_names")
        if rate is None:
            raise EEGInputError(f"{path}: no sampling rate; store 'sfreq' in the NPZ or pass sfreq")
        if len(names) != data.shape[0]:
            raise EEGInputError(f"{path}: {len(names)} channel names for {data.shape[0]} channels")
        types = ["eeg"] * len(names)
        return data, names, types, rate, mne.Annotations([], [], [])

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    delim = "\t" if ".tsv" in path.name.lower() else ","
    try:
        with opener(path, "rt") as f:
            first = f.readline()
        if first.startswith("%"):
            return _openbci(path, opener, ch_names)
        if "TimeStamp" in first and "RAW_" in first:
            return _mind_monitor(path, opener)
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise EEGInputError(f"{path}: cannot be read as a table ({err})") from None
    try:
        with opener(path, "rt") as f:
            first = f.readline()
            if delim == "," and "," not in first:
                delim = None  # whitespace-separated .txt (e.g. STEW)
            header = [h.strip() for h in first.strip().split(delim)]
            has_header = any(_not_number(h) for h in header)
            table = np.loadtxt(path, delimiter=delim, skiprows=1 if has_header else 0, ndmin=2)
    except (OSError, ValueError, EOFError) as err:
        raise EEGInputError(f"{path}: cannot be read as a numeric table ({err})") from None
    names = list(ch_names) if ch_names else (header if has_header else [])
    if not names:
        raise EEGInputError(f"{path}: no header row with channel names; pass ch_names")
    if len(names) != table.shape[1]:
        raise EEGInputError(f"{path}: {len(names)} channel names for {table.shape[1]} columns")
    data = table.T
    kinds = [classify(n).kind for n in names]
    rate = sfreq
    if rate is None:
        ts = [i for i, n in enumerate(names) if n.strip().lower().startswith("timestamp")]
        if not ts or data.shape[1] < 2:
            raise EEGInputError(f"{path}: no sampling rate: the table has no timestamps column; pass sfreq")
        t = data[ts[0]]
        if not t[-1] > t[0]:
            raise EEGInputError(f"{path}: timestamps do not increase; pass sfreq")
        # Streamed devices (Muse over LSL) stamp samples in bursts: use the mean rate, and the
        # nominal integer rate when it is within 1 %.
        rate = (len(t) - 1) / (t[-1] - t[0])
        rate = float(round(rate)) if abs(rate - round(rate)) < 0.01 * rate else round(rate, 3)
    onsets, descs = [], []
    for i, k in enumerate(kinds):
        if k == "stim":  # a marker column: non-zero samples are event codes
            idx = np.flatnonzero(data[i])
            onsets += list(idx / rate)
            descs += [str(int(v)) if float(v).is_integer() else str(v) for v in data[i, idx]]
    order = np.argsort(onsets, kind="stable")
    ann = mne.Annotations(np.asarray(onsets)[order], np.zeros(len(order)), np.asarray(descs, dtype=object)[order])
    types = ["stim" if k == "stim" else "eeg" for k in kinds]
    return data, names, types, rate, ann


def read_xdf(path: Path):
    """An XDF file (Lab Streaming Layer's recorder): its EEG stream (type "EEG", else the regular
    stream with the most channels), labels and units from the stream's description, the nominal
    rate, and every marker stream's strings as events on the EEG stream's clock."""
    import pyxdf

    try:
        streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    except READER_ERRORS as err:  # pyxdf raises several types for a damaged file
        if not from_reader(err):
            raise
        raise EEGInputError(f"{path}: cannot be read as XDF ({err}); the file is damaged or not XDF") from None

    def info(s, key, default=""):
        v = s["info"].get(key, [default])
        return v[0] if isinstance(v, list) and v else default

    regular = [s for s in streams if float(info(s, "nominal_srate", 0) or 0) > 0 and len(s["time_stamps"])]
    eeg = [s for s in regular if str(info(s, "type")).lower() == "eeg"] or \
        sorted(regular, key=lambda s: -int(info(s, "channel_count", 0)))
    if not eeg:
        raise EEGInputError(f"{path}: no EEG stream with samples among {len(streams)} stream(s)")
    s = eeg[0]
    x = np.asarray(s["time_series"], np.float64).T
    desc = (s["info"].get("desc") or [None])[0] or {}
    chans = ((desc.get("channels") or [{}])[0] or {}).get("channel", []) if isinstance(desc, dict) else []
    names = [str((c.get("label") or [""])[0]) for c in chans] if len(chans) == x.shape[0] else []
    if not names or not all(names):
        raise EEGInputError(f"{path}: stream {info(s, 'name')!r} has no channel labels in its description; "
                            "name the channels in the recording software")
    units = [str((c.get("unit") or ["microvolts"])[0]).lower() for c in chans]
    scale = np.array([1e6 if u in ("v", "volt", "volts") else 1e3 if u in ("mv", "millivolts") else 1.0 for u in units])
    t0 = float(s["time_stamps"][0])
    onsets, descs = [], []
    for m in streams:
        if m is s or float(info(m, "nominal_srate", 0) or 0) > 0:
            continue
        for t, v in zip(m["time_stamps"], m["time_series"]):
            onsets.append(float(t) - t0)
            descs.append(str(v[0]) if len(v) else "")
    return x * scale[:, None], names, ["eeg"] * len(names), float(info(s, "nominal_srate")), \
        mne.Annotations(onsets, [0.0] * len(onsets), descs)


def _openbci(path: Path, opener, ch_names):
    """OpenBCI GUI recordings (``OpenBCI-RAW-*.txt``): ``%`` header lines with the channel count and
    rate (250 Hz Cyton, 125 Hz Cyton + Daisy), then samples, µV, with a header row (GUI v5/v6) or
    without (legacy). The GUI does not record where the electrodes were, so its channels are
    ``EXG Channel 0``... until ``ch_names`` (or ``rename``) names them."""
    import csv

    with opener(path, "rt", newline="") as f:
        lines = f.read().splitlines()
    meta = dict(re.findall(r"^%[ \t]*([^=\n]+?)[ \t]*=[ \t]*(.+?)[ \t]*$", "\n".join(l for l in lines if l.startswith("%")), re.M))
    try:
        n_ch = int(meta["Number of channels"])
        rate = float(re.match(r"[\d.]+", meta["Sample Rate"]).group())
    except (KeyError, ValueError, AttributeError):
        raise EEGInputError(f"{path}: an OpenBCI file without '%Number of channels' and '%Sample Rate' "
                            "header lines; is it complete?") from None
    rows = [r for r in csv.reader(l for l in lines if l.strip() and not l.startswith("%"))]
    if rows and _not_number(rows[0][1].strip() if len(rows[0]) > 1 else ""):
        rows = rows[1:]  # GUI v5/v6 header row: Sample Index, EXG Channel 0, ...
    try:
        data = np.array([[float(v) for v in r[1:1 + n_ch]] for r in rows], np.float64).T
    except ValueError as err:
        raise EEGInputError(f"{path}: a sample row is not numeric ({err}); is the file complete?") from None
    if data.ndim != 2 or data.shape[0] != n_ch:
        raise EEGInputError(f"{path}: no samples of the {n_ch} channels the header announces")
    names = list(ch_names) if ch_names else [f"EXG Channel {k}" for k in range(n_ch)]
    if len(names) != n_ch:
        raise EEGInputError(f"{path}: {len(names)} channel names for {n_ch} OpenBCI channels")
    return data, names, ["eeg"] * n_ch, rate, mne.Annotations([], [], [])


def _mind_monitor(path: Path, opener):
    """Mind Monitor CSV (Muse): ``TimeStamp`` as text, ``RAW_TP9`` ... µV at 256 Hz, and marker rows
    whose ``Elements`` column holds an event (``/muse/elements/blink``...) with no samples."""
    import csv

    with opener(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    raw_cols = [c for c in (rows[0].keys() if rows else []) if c.startswith("RAW_")]
    samples = [r for r in rows if all((r.get(c) or "").strip() for c in raw_cols)]
    if len(samples) < 2:
        raise EEGInputError(f"{path}: a Mind Monitor file without raw samples; record with the "
                            "recording interval set to 'Constant' so RAW_ columns are written")
    try:
        t = np.array([np.datetime64(r["TimeStamp"].strip().replace(" ", "T")) for r in samples])
        data = np.array([[float(r[c]) for c in raw_cols] for r in samples], np.float64).T
    except ValueError as err:
        raise EEGInputError(f"{path}: a TimeStamp or RAW_ value is not readable ({err})") from None
    seconds = (t - t[0]) / np.timedelta64(1, "ns") * 1e-9
    if not seconds[-1] > 0:
        raise EEGInputError(f"{path}: timestamps do not increase")
    rate = (len(seconds) - 1) / seconds[-1]
    rate = float(round(rate)) if abs(rate - round(rate)) < 0.01 * rate else round(rate, 3)
    marks = [(np.datetime64(r["TimeStamp"].strip().replace(" ", "T")), r["Elements"].strip())
             for r in rows if (r.get("Elements") or "").strip()]
    ann = mne.Annotations([float((m - t[0]) / np.timedelta64(1, "ns") * 1e-9) for m, _ in marks],
                          [0.0] * len(marks), [d for _, d in marks])
    return data, [c[len("RAW_"):] for c in raw_cols], ["eeg"] * len(raw_cols), rate, ann


def _not_number(s: str) -> bool:
    try:
        float(s)
        return False
    except ValueError:
        return True
