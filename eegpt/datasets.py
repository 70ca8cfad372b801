"""The files of public datasets as their authors distribute them, read into one recording each.

Several benchmarks ship arrays of trials rather than continuous recordings a reader like MNE
opens: DEAP's Python pickles, SEED-IV's MATLAB files, Cho 2017's and BCI Competition IV-1's MATLAB
structures. Others ship continuous recordings whose labels are elsewhere: DEAP's BDFs (rated in a
table beside them) and SEED-V's Neuroscan files (its clips found by a table of seconds in the
dataset's documentation). A card names the reader with ``[read] format = "..."``; the reader
returns the file's trials laid end to end (or the recording as it is), each trial marked by an
event named after its class, so the card's ``events`` label adapter and the windowing of
:mod:`eegpt.cards` apply as they do to an EDF+ file. Electrode names come from the file where it
holds them, else from the dataset's documented channel order (below, with its source). Anything in
a file that disagrees with the layout described here (a missing key, another shape, a label outside
the scale) is refused with one line naming the file, never read wrong.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from eegpt.errors import READER_ERRORS, EEGInputError, from_reader
from eegpt.mne_io import from_mne, open_mne

# DEAP's "data_preprocessed_python" (Koelstra et al. 2012, the dataset's own description):
# 32 EEG channels in the Geneva order, then 8 peripheral channels; 128 Hz; each trial is 3 s of
# pre-trial baseline followed by the 60-s music video.
DEAP_CHANNELS = ["Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
                 "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2",
                 "P4", "P8", "PO4", "O2", "hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Respiration belt",
                 "Plethysmograph", "Temperature"]
DEAP_SFREQ, DEAP_BASELINE_S = 128.0, 3.0

# DEAP's "data_original/sXX.bdf" (the dataset's readme): BioSemi at 512 Hz, channels named in the
# file (the Geneva and Twente sites order them differently), and a Status channel whose code 4 starts
# each 60-s music video (1 start, rating screens; 2 sync; 3 fixation before; 5 fixation after; 7 end;
# read as events by eegpt.recording, masked to the trigger bits as Twente's files need). The ratings are
# in "metadata_csv/participant_ratings.csv": Participant_id, Trial (the presentation order the
# markers follow), Experiment_id, Start_time, Valence, Arousal, Dominance, Liking, Familiarity.
DEAP_VIDEO_CODE, DEAP_VIDEO_S = 4, 60.0

# SEED-IV's "eeg_raw_data/<session>/<subject>_<date>.mat" (the dataset's ReadMe and channel-order
# sheet): 24 trials per session as "<initials>_eeg1" ... "_eeg24", [62, samples] at 200 Hz; the
# emotion of each trial is fixed per session (0 neutral, 1 sad, 2 fear, 3 happy).
SEED_CHANNELS = ["Fp1", "Fpz", "Fp2", "AF3", "AF4", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "FT7",
                 "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "Cz", "C2", "C4",
                 "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8", "P7", "P5", "P3", "P1",
                 "Pz", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POz", "PO4", "PO6", "PO8", "CB1", "O1", "Oz",
                 "O2", "CB2"]
SEED_IV_SFREQ = 200.0
SEED_IV_EMOTIONS = ["neutral", "sad", "fear", "happy"]
SEED_IV_SESSIONS = {"1": [1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3],
                    "2": [2, 1, 3, 0, 0, 2, 0, 2, 3, 3, 2, 3, 2, 0, 1, 1, 2, 1, 0, 3, 0, 1, 3, 1],
                    "3": [1, 2, 2, 1, 3, 3, 3, 1, 1, 2, 1, 0, 2, 3, 3, 0, 2, 3, 0, 0, 2, 0, 1, 0]}

# SEED-V's "EEG_raw/<subject>_<session>_<date>.cnt" (Neuroscan, 1000 Hz; 62 EEG in the SEED order
# above plus M1, M2, VEO, HEO; a few as "..._repaired.cnt", which readers use instead of the original): 15 film clips per session whose start and end, in seconds from the
# recording's first sample, and emotion are fixed per session. The table is the dataset's
# documentation's; it is not in the files. It is written here as torcheeg's SEEDVDataset, CBraMod's
# SEED-V preprocessing and several other public readers give it, all of which agree digit for digit.
SEED_V_EMOTIONS = ["disgust", "fear", "sad", "neutral", "happy"]
SEED_V_SESSIONS = {
    "1": {"start": [30, 132, 287, 555, 773, 982, 1271, 1628, 1730, 2025, 2227, 2435, 2667, 2932, 3204],
          "end": [102, 228, 524, 742, 920, 1240, 1568, 1697, 1994, 2166, 2401, 2607, 2901, 3172, 3359],
          "emotion": [4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0]},
    "2": {"start": [30, 299, 548, 646, 836, 1000, 1091, 1392, 1657, 1809, 1966, 2186, 2333, 2490, 2741],
          "end": [267, 488, 614, 773, 967, 1059, 1331, 1622, 1777, 1908, 2153, 2302, 2428, 2709, 2817],
          "emotion": [2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0]},
    "3": {"start": [30, 353, 478, 674, 825, 908, 1200, 1346, 1451, 1711, 2055, 2307, 2457, 2726, 2888],
          "end": [321, 418, 643, 764, 877, 1147, 1284, 1418, 1679, 1996, 2275, 2425, 2664, 2857, 3066],
          "emotion": [2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0]},
}

# Cho et al. 2017 (GigaDB 100295) "sNN.mat": struct "eeg" with imagery_left / imagery_right
# [68, samples] (64 EEG in the BioSemi order below, then 4 EMG), imagery_event (1 at each cue)
# and srate (512); 3 s of imagery follow each cue. The channel order is MOABB's Cho2017 reader's.
CHO_CHANNELS = ["Fp1", "AF7", "AF3", "F1", "F3", "F5", "F7", "FT7", "FC5", "FC3", "FC1", "C1", "C3", "C5", "T7",
                "TP7", "CP5", "CP3", "CP1", "P1", "P3", "P5", "P7", "P9", "PO7", "PO3", "O1", "Iz", "Oz", "POz",
                "Pz", "CPz", "Fpz", "Fp2", "AF8", "AF4", "AFz", "Fz", "F2", "F4", "F6", "F8", "FT8", "FC6", "FC4",
                "FC2", "FCz", "Cz", "C2", "C4", "C6", "T8", "TP8", "CP6", "CP4", "CP2", "P2", "P4", "P6", "P8",
                "P10", "PO8", "PO4", "O2", "EMG1", "EMG2", "EMG3", "EMG4"]
CHO_IMAGERY_S = 3.0

# BCI Competition IV-1 "BCICIV_calib_ds1X.mat" (the competition's description): cnt [samples, 59]
# int16 in 0.1 µV, mrk.pos (cue samples) and mrk.y (-1 / 1: nfo.classes[0] / [1]), nfo.fs,
# nfo.clab (electrode names); 4 s of imagery follow each cue.
BCICIV1_IMAGERY_S = 4.0


def read_distributed(fmt: str, path: Path):
    """(data [C, T] µV, channel names, MNE channel types, rate, events) of one file of ``fmt``."""
    import mne

    if fmt not in READERS:
        raise EEGInputError(f"{path}: unknown read.format {fmt!r}; choose from {', '.join(READERS)}")
    try:
        data, names, sfreq, trials = READERS[fmt](path)
    except NotLaidOut as err:
        raise EEGInputError(f"{path}: not laid out as a {fmt} file ({err}); "
                            "is this the dataset's file as distributed?") from None
    onsets, durations, labels = zip(*trials) if trials else ((), (), ())
    return (np.asarray(data, np.float64), list(names), ["misc"] * len(names), float(sfreq),
            mne.Annotations(list(onsets), list(durations), list(labels)))


class NotLaidOut(Exception):
    """A file's content disagrees with its dataset's documented layout (a missing key or field,
    another shape, values that are not numbers): raised by the readers here, and told the user by
    ``read_distributed`` in one line. Any other exception from a reader is a bug and keeps its traceback."""


def _field(obj, name: str):
    """``obj[name]`` of a dict (a pickle, a MATLAB file's variables) or ``obj.name`` of a MATLAB
    struct; missing, it is the file's fault."""
    if isinstance(obj, dict):
        if name not in obj:
            raise NotLaidOut(f"no {name!r}; it holds {', '.join(map(str, obj)) or 'nothing'}")
        return obj[name]
    if not hasattr(obj, name):
        raise NotLaidOut(f"no field {name!r} in a {type(obj).__name__}")
    return getattr(obj, name)


def _numbers(x, what: str) -> np.ndarray:
    """``x`` as float64, refused as the file's fault when it does not hold numbers."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)):
        raise NotLaidOut(f"{what} holds {x.dtype} values, not numbers")
    return x.astype(np.float64)


def _laid_end_to_end(arrays, sfreq, spans):
    """Trials [C, S_k] joined in time, and each trial's (onset + start, length, label) event."""
    trials, at = [], 0
    for x, (start_s, length_s, label) in zip(arrays, spans):
        trials.append((at / sfreq + start_s, length_s, label))
        at += x.shape[1]
    return np.concatenate(arrays, axis=1), trials


def _deap(path: Path):
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")  # pickled by Python 2
    except (pickle.UnpicklingError, EOFError, UnicodeDecodeError) as err:
        raise EEGInputError(f"{path}: cannot be read as a DEAP Python pickle ({err})") from None
    data, ratings = _numbers(_field(obj, "data"), "data"), _numbers(_field(obj, "labels"), "labels")
    if data.ndim != 3 or data.shape[1] != len(DEAP_CHANNELS) or ratings.shape != (data.shape[0], 4):
        raise NotLaidOut(f"data {data.shape} and labels {ratings.shape}, expected [trials, 40, samples] and "
                         "[trials, 4]")
    if ((ratings < 1) | (ratings > 9)).any():
        raise NotLaidOut("ratings outside DEAP's 1-9 scale")
    trial_s = data.shape[2] / DEAP_SFREQ
    # valence (column 0) and arousal (1): high above the scale's midpoint 5
    quadrant = [_quadrant(v, a) for v, a in ratings[:, :2]]
    joined, trials = _laid_end_to_end(list(data), DEAP_SFREQ,
                                      [(DEAP_BASELINE_S, trial_s - DEAP_BASELINE_S, q) for q in quadrant])
    return joined, DEAP_CHANNELS, DEAP_SFREQ, trials


def _quadrant(valence: float, arousal: float) -> str:
    """DEAP's valence/arousal quadrant: high above the 1-9 scale's midpoint 5."""
    return ("HV" if valence > 5 else "LV") + ("HA" if arousal > 5 else "LA")


def _deap_ratings(path: Path, subject: int) -> list[str]:
    """Each trial's quadrant, in presentation order, from the participant_ratings.csv beside the
    recording's folder (``metadata_csv/`` as the dataset ships it) or in it."""
    import csv

    found = [c for folder in (path.parent, path.parent.parent)
             for c in (folder / "participant_ratings.csv", folder / "metadata_csv" / "participant_ratings.csv")
             if c.is_file()]
    if not found:
        raise EEGInputError(f"{path}: no participant_ratings.csv beside it (DEAP's metadata_csv/, next to "
                            "data_original/): the ratings that label its trials")
    columns = ("Participant_id", "Trial", "Valence", "Arousal")
    with open(found[0], newline="", encoding="utf-8-sig") as f:
        table = list(csv.DictReader(f))
    if not table or any(c not in table[0] for c in columns):
        raise NotLaidOut(f"{found[0]}: the columns {', '.join(columns)} are not all there")
    try:  # the table's cells as numbers: a cell that is not one is the table's fault
        cells = [(int(r["Participant_id"]), int(r["Trial"]), float(r["Valence"]), float(r["Arousal"])) for r in table]
    except (TypeError, ValueError) as err:
        raise NotLaidOut(f"{found[0]}: a cell that is not a number ({err})") from None
    rows = sorted((trial, v, a) for who, trial, v, a in cells if who == subject)
    if not rows:
        raise EEGInputError(f"{path}: {found[0]} holds no ratings of participant {subject}")
    ratings = np.array([[v, a] for _, v, a in rows])
    if ((ratings < 1) | (ratings > 9)).any():
        raise NotLaidOut(f"{found[0]}: ratings outside DEAP's 1-9 scale")
    return [_quadrant(v, a) for v, a in ratings]


def _deap_bdf(path: Path):

    named = re.fullmatch(r"s(\d\d)\.bdf", path.name, flags=re.IGNORECASE)
    if not named:
        raise EEGInputError(f"{path}: DEAP's recordings are named sXX.bdf, the participant's number; keep the "
                            "dataset's file names")
    quadrants = _deap_ratings(path, int(named.group(1)))
    raw, _ = open_mne(path)
    data, names, _, sfreq, triggers = from_mne(raw, str(path))  # the Status codes as events
    if not any(n.lower() == "status" for n in names):
        raise EEGInputError(f"{path}: no Status channel, which marks DEAP's videos")
    starts = triggers.onset[triggers.description == str(DEAP_VIDEO_CODE)]
    if len(starts) != len(quadrants):
        raise EEGInputError(f"{path}: {len(starts)} video starts (Status code {DEAP_VIDEO_CODE}) where the "
                            f"ratings list {len(quadrants)} trials of this participant")
    return data, names, sfreq, [(float(t), DEAP_VIDEO_S, q) for t, q in zip(starts, quadrants)]


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError:
        raise EEGInputError(f"{path}: a MATLAB v7.3 (HDF5) file; save it as v7 or earlier") from None
    except READER_ERRORS as err:  # scipy raises several types for a damaged file
        if not from_reader(err):
            raise
        raise EEGInputError(f"{path}: cannot be read as a MATLAB file ({err})") from None


def _seed_iv(path: Path):
    session = path.parent.name
    if session not in SEED_IV_SESSIONS:
        raise EEGInputError(f"{path}: SEED-IV files sit in their session's folder 1, 2 or 3 (this one is in "
                            f"{session!r}), which fixes each trial's emotion; keep the dataset's layout")
    mat = _loadmat(path)
    found = {int(m.group(1)): k for k in mat if (m := re.fullmatch(r"[A-Za-z]+_eeg(\d+)", k))}
    labels = SEED_IV_SESSIONS[session]
    if sorted(found) != list(range(1, len(labels) + 1)):
        raise NotLaidOut(f"trials {sorted(found)} where session {session} has 1-{len(labels)}")
    arrays = [np.atleast_2d(_numbers(mat[found[k]], found[k])) for k in sorted(found)]
    if any(a.ndim != 2 or a.shape[0] != len(SEED_CHANNELS) for a in arrays):
        raise NotLaidOut(f"trials of {sorted({a.shape[0] for a in arrays})} channels, expected {len(SEED_CHANNELS)}")
    joined, trials = _laid_end_to_end(arrays, SEED_IV_SFREQ, [(0.0, a.shape[1] / SEED_IV_SFREQ, SEED_IV_EMOTIONS[lab])
                                                              for a, lab in zip(arrays, labels)])
    return joined, SEED_CHANNELS, SEED_IV_SFREQ, trials


def _seed_v(path: Path):

    named = re.fullmatch(r"(\d+)_(\d+)_(\d{8})(_repaired)?\.cnt", path.name, flags=re.IGNORECASE)
    if not named or named.group(2) not in SEED_V_SESSIONS:
        raise EEGInputError(f"{path}: SEED-V files are named <subject>_<session 1-3>_<date>.cnt, which fixes each "
                            "clip's timing and emotion; keep the dataset's file names")
    repaired = path.with_name(f"{path.stem}_repaired{path.suffix}")
    if not named.group(4) and repaired.exists():  # reading both would count the session twice
        raise EEGInputError(f"{path}: superseded by {repaired.name} beside it; move one of the two out of the "
                            "folder (or prepare with --skip-bad)")
    table = SEED_V_SESSIONS[named.group(2)]
    raw, _ = open_mne(path)
    data, names, _, sfreq, _ = from_mne(raw, str(path))
    length_s = data.shape[1] / sfreq
    if length_s < table["end"][-1]:
        raise EEGInputError(f"{path}: {length_s:.0f} s long, but session {named.group(2)}'s last clip ends at "
                            f"{table['end'][-1]} s; is this the dataset's recording as distributed?")
    trials = [(float(a), float(b - a), SEED_V_EMOTIONS[k]) for a, b, k in zip(table["start"], table["end"],
                                                                               table["emotion"])]
    return data, names, sfreq, trials


def _cho2017(path: Path):
    eeg = _field(_loadmat(path), "eeg")
    rate = _numbers(_field(eeg, "srate"), "srate")
    if rate.size != 1:
        raise NotLaidOut(f"srate of shape {rate.shape}, expected one number")
    sfreq = float(rate.reshape(()))
    events = _numbers(_field(eeg, "imagery_event"), "imagery_event").ravel()
    parts, trials, at = [], [], 0
    for label, key in (("left_hand", "imagery_left"), ("right_hand", "imagery_right")):
        x = _numbers(_field(eeg, key), key)
        cues = np.flatnonzero(events > 0)
        if x.ndim != 2 or x.shape[0] != len(CHO_CHANNELS) or len(events) != x.shape[1]:
            raise NotLaidOut(f"{key} {x.shape} and imagery_event of {events.size} samples, "
                             f"expected [{len(CHO_CHANNELS)}, samples] and one flag per sample")
        parts.append(x - x.mean(axis=1, keepdims=True))  # the amplifier's offset, as MOABB removes it
        trials += [((at + c) / sfreq, CHO_IMAGERY_S, label) for c in cues]
        at += x.shape[1]
    return np.concatenate(parts, axis=1), CHO_CHANNELS, sfreq, trials


def _bciciv1(path: Path):
    mat = _loadmat(path)
    if "mrk" not in mat:
        raise EEGInputError(f"{path}: no 'mrk' (cue positions and classes): an evaluation file, whose labels the "
                            "competition published separately; prepare the calibration files (BCICIV_calib_*)")
    nfo, mrk = _field(mat, "nfo"), mat["mrk"]
    cnt = _numbers(_field(mat, "cnt"), "cnt") * 0.1  # int16 in 0.1 µV
    rate = _numbers(_field(nfo, "fs"), "nfo.fs")
    if rate.size != 1:
        raise NotLaidOut(f"nfo.fs of shape {rate.shape}, expected one number")
    names, sfreq = [str(c) for c in np.atleast_1d(_field(nfo, "clab"))], float(rate.reshape(()))
    classes = [str(c) for c in np.atleast_1d(_field(nfo, "classes"))]
    pos = np.atleast_1d(_numbers(_field(mrk, "pos"), "mrk.pos")).astype(int)
    y = np.atleast_1d(_numbers(_field(mrk, "y"), "mrk.y")).astype(int)
    if cnt.ndim != 2 or cnt.shape[1] != len(names) or len(pos) != len(y) or len(classes) != 2 \
            or not set(y) <= {-1, 1}:
        raise NotLaidOut(f"cnt {cnt.shape} for {len(names)} names, {len(pos)} cues, {len(y)} labels, classes "
                         f"{classes}")
    # mrk.pos counts samples from 1 (MATLAB)
    trials = [((p - 1) / sfreq, BCICIV1_IMAGERY_S, classes[0 if k == -1 else 1]) for p, k in zip(pos, y)]
    return cnt.T, names, sfreq, trials


READERS = {"deap-python": _deap, "deap-bdf": _deap_bdf, "seed-iv-mat": _seed_iv, "seed-v-cnt": _seed_v, "cho2017-mat": _cho2017,
           "bciciv1-mat": _bciciv1}
