"""Reading EEG: any format MNE reads, the formats :mod:`eegpt.formats` reads (tables, OpenBCI,
Mind Monitor, XDF), a dataset's own layout (:mod:`eegpt.datasets`) or an MNE object, into one
:class:`Recording`.

A Recording holds only EEG electrodes, under canonical names (see :mod:`eegpt.electrodes`), in µV
float32. Non-EEG channels (ECG, EOG, EMG, the reference, triggers, timestamps...) and channels
that are no electrode we know (a BioSemi ``EXG1``, a BrainVision ``HL``, a Nihon Kohden ``POL E``)
are listed in ``set_aside`` with the reason; they never reach the model. A file is refused only
when no known EEG electrode is left, or when the caller asks for ``strict`` names.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mne
import numpy as np

from eegpt.electrodes import MAX_POSITION_DEGREES, by_position, classify, frame_agrees, has_position, misplaced
from eegpt.errors import EEGInputError
from eegpt.formats import read_table, read_xdf
from eegpt.mne_io import TEXT_SUFFIXES, check_file, from_mne, open_mne

@dataclass
class Recording:
    """One EEG recording in the project's vocabulary.

    Attributes
    ----------
    signals : float32 array [C, T] in µV (after :func:`eegpt.preprocess.preprocess`, in the
        recipe's scaled unit, named by ``unit``).
    electrodes : canonical electrode names, one per row of ``signals``.
    sfreq : sampling rate in Hz.
    raw_names : the channel names as the file spelled them, one per row.
    events : annotations (onset and duration in seconds from the first sample, description).
    set_aside : raw name -> why it is not fed to the model ("ecg", "eog", "reference", "flat"...).
    subject : subject identifier, when known.
    source : the file it came from.
    meta : anything else worth keeping (format, measurement date, preprocessing applied).
    """

    signals: np.ndarray
    electrodes: list[str]
    sfreq: float
    raw_names: list[str] = field(default_factory=list)
    events: mne.Annotations = field(default_factory=lambda: mne.Annotations([], [], []))
    set_aside: dict[str, str] = field(default_factory=dict)
    subject: str | None = None
    source: str = "<memory>"
    unit: str = "uV"
    meta: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.signals.shape[1])

    @property
    def duration(self) -> float:
        return self.n_samples / self.sfreq

    def summary(self) -> dict:
        """A JSON-ready description (what ``eegpt inspect --json`` prints)."""
        return {
            "source": self.source,
            "subject": self.subject,
            "electrodes": list(self.electrodes),
            "raw_names": list(self.raw_names),
            "set_aside": dict(self.set_aside),
            "sfreq": float(self.sfreq),
            "n_samples": self.n_samples,
            "duration_s": round(self.duration, 6),
            "unit": self.unit,
            "events": [{"onset": round(float(a["onset"]), 6), "duration": round(float(a["duration"]), 6),
                        "description": str(a["description"])} for a in self.events],
            "by_position": dict(self.meta.get("by_position", {})),  # raw name -> degrees from its electrode
            "meta": {k: v for k, v in self.meta.items() if isinstance(v, (str, int, float, bool, type(None)))},
        }

    def describe(self) -> str:
        """What ``eegpt inspect`` prints: source, rate, each electrode's raw and canonical name, what
        was set aside and why, and the events by description."""
        info = self.summary()
        lines = [f"file        {info['source']}  ({info['meta'].get('format', '?')})",
                 f"rate        {info['sfreq']:g} Hz, {info['n_samples']} samples, {info['duration_s']:.2f} s",
                 f"electrodes  {len(self.electrodes)}"]
        placed = info["by_position"]
        if "splines" in self.meta:
            lines.append(f"  (by position: {self.meta['splines']})")
        lines += [f"  {raw!r:>16} -> {name}" + (f"  (by position, {placed[raw]:g} degrees away)" if raw in placed else "")
                  for raw, name in zip(self.raw_names, self.electrodes)]
        if self.set_aside:
            lines.append(f"set aside   {len(self.set_aside)}")
            lines += [f"  {raw!r:>16}    {why}" for raw, why in self.set_aside.items()]
        counts: dict[str, int] = {}
        for e in info["events"]:
            counts[e["description"]] = counts.get(e["description"], 0) + 1
        lines.append(f"events      {len(info['events'])}"
                     + (": " + ", ".join(f"{k} x{v}" for k, v in counts.items()) if counts else ""))
        return "\n".join(lines)


def read(source, *, sfreq: float | None = None, ch_names: list[str] | None = None,
         subject: str | None = None, rename: dict[str, str] | None = None,
         drop_bad: bool = False, strict: bool = False, distributed: str | None = None,
         montage: str | None = None, place: str = "nearest", onto=None) -> Recording:
    """Read a recording from a file or an MNE object.

    Parameters
    ----------
    source : path or ``mne.io.BaseRaw`` or ``mne.BaseEpochs``
        A file MNE reads (EDF/EDF+, BDF, GDF, FIF, EEGLAB .set, BrainVision .vhdr, ...), a text
        table (``.csv``/``.tsv``/``.txt``, optionally ``.gz``; one column per channel, µV) or an
        ``.npz`` with ``data`` [C, T] (µV), ``ch_names`` and ``sfreq``. Epochs are laid end to
        end, each epoch's start marked by an event named after its condition.
    sfreq : sampling rate for tables without one (else taken from a ``timestamps`` column).
    ch_names : channel names for tables without a header row (or to override it).
    subject : subject identifier to record.
    rename : raw name -> electrode name, applied before normalisation (for vendor numbering such
        as BCI Competition IV-2a's ``EEG-0``).
    drop_bad : set flat and non-finite channels aside instead of refusing the recording.
    strict : refuse a recording with a channel that is neither a known electrode nor recognised
        as non-EEG (by default such channels are set aside as "unknown").
    montage : an MNE standard montage's name (``biosemi128``, ``GSN-HydroCel-129``) or a montage
        file MNE reads (``.elc``, ``.sfp``, ``.loc``, ...), for channels named by number: their
        positions, by name. Positions the file holds (EEGLAB ``chanlocs``, FIF digitisation,
        BrainVision coordinates) are used without it. A channel that is no known electrode but has a
        position is read as the nearest 10-10 electrode within
        :data:`eegpt.electrodes.MAX_POSITION_DEGREES` (``by_position``).
    place : how positioned channels become electrodes: ``"nearest"`` (each the nearest free 10-10
        electrode, its samples as recorded) or ``"splines"`` (each positioned EEG channel given
        one distinct 10-10 site by optimal assignment, and the samples there interpolated by
        spherical splines from every positioned channel; see the cap-positions ablation).
    onto : with ``place="splines"``, the electrodes to interpolate onto instead (a model head's
        montage: what :func:`eegpt.predict`'s ``place="montage"`` passes), those the cap covers; a
        recording whose channels carry no positions is placed by its electrodes' names.
    distributed : read a dataset's own file layout (``deap-python``, ``deap-bdf``, ``seed-iv-mat``,
        ``seed-v-cnt``, ``cho2017-mat``, ``bciciv1-mat``; see :mod:`eegpt.datasets`): its trials end to end,
        each marked by an event naming its class.

    Raises
    ------
    EEGInputError
        With one line naming the file and the problem, for a missing, empty, unreadable, truncated
        or malformed file, duplicate channel names or electrodes, NaN/Inf samples, flat channels,
        unknown electrode names (``strict``), or a recording without a known EEG electrode.
    """
    name, data, names, types, rate, ann, positions, fmt = _load(source, sfreq, ch_names, distributed)
    meta = {"format": fmt}
    if montage is not None:
        positions = {**positions, **_montage_positions(montage, names, name)}
    elif not positions:
        cap, cap_rename, cap_positions = recognised_cap(names)
        if cap:
            rename = {**cap_rename, **(rename or {})}
            positions, meta["cap"] = cap_positions, f"{cap} (recognised by its channel names)"
    if ch_names is not None and fmt == "mne":
        raise EEGInputError(f"{name}: ch_names applies to tables only; use rename= for MNE objects")
    if place not in ("nearest", "splines"):
        raise EEGInputError(f"place={place!r}: choose 'nearest' or 'splines'")
    if onto is not None and place != "splines":
        raise EEGInputError(f"onto= interpolates by spherical splines: read with place='splines' (not {place!r})")
    if place == "splines":
        data, names, types, positions, meta = _onto_sites(name, data, names, types, positions, rename or {}, meta,
                                                          onto)
    return _build(name, data, names, types, float(rate), ann, subject, rename or {},
                  drop_bad, strict, meta, positions)


def _load(source, sfreq, ch_names, distributed):
    """(name, data, channel names, types, rate, annotations, positions, format) of a file or an MNE
    object, by the reader its kind needs (a dataset's own layout, XDF, a table, or MNE)."""
    positions: dict = {}
    if isinstance(source, (mne.io.BaseRaw, mne.BaseEpochs)):
        name = getattr(source, "filenames", [None])[0] or f"<{type(source).__name__}>"
        data, names, types, rate, ann = from_mne(source, str(name))
        positions = _positions_of(source)
        fmt = "mne"
    else:
        path = Path(source)
        name = str(path)
        check_file(path)
        lower = path.name.lower()
        if distributed is not None:
            from eegpt.datasets import read_distributed

            data, names, types, rate, ann = read_distributed(distributed, path)
            fmt = distributed
        elif lower.endswith((".xdf", ".xdfz")):
            data, names, types, rate, ann = read_xdf(path)
            fmt = "xdf"
        elif lower.endswith(TEXT_SUFFIXES) or lower.endswith(".npz"):
            data, names, types, rate, ann = read_table(path, sfreq, ch_names)
            fmt = lower.split(".")[-2] if lower.endswith(".gz") else lower.rsplit(".", 1)[-1]
        else:
            raw, duplicates = open_mne(path)
            data, names, types, rate, ann = from_mne(raw, name)
            positions = _positions_of(raw)
            names = [duplicates.get(n, n) for n in names]  # MNE's running numbers undone: say it
            fmt = path.suffix.lstrip(".").lower()
    return name, data, names, types, rate, ann, positions, fmt


def _onto_sites(name, data, names, types, positions, rename, meta, onto=None):
    """The positioned EEG channels (named or numbered; their positions, not their names, count)
    replaced by their spherical-spline interpolation onto the 10-10 sites assigned to them, or onto
    the electrodes ``onto`` that the cap covers (:func:`eegpt.electrodes.assigned_sites`), named by
    those sites; the other channels as they were."""
    from eegpt.electrodes import assigned_sites, position

    def eeg_like(i):
        return types[i] in ("eeg", "misc") and classify(rename.get(names[i], names[i])).kind in ("eeg", "unknown")

    named = {names[i]: classify(rename.get(names[i], names[i])).name for i in range(len(names))
             if eeg_like(i) and classify(rename.get(names[i], names[i])).kind == "eeg"}
    if not frame_agrees(positions, named):
        raise EEGInputError(f"{name}: place='splines' needs the channels' positions, and they disagree with the "
                            "channel names (another coordinate frame?); read with place='nearest'")
    rows = [i for i in range(len(names)) if eeg_like(i) and has_position(positions.get(names[i]))]
    if onto is not None and not rows:  # a cap named in the 10-05 system: its names say where it sits
        positions = {raw: position(e) for raw, e in named.items() if "-" not in e}
        rows = [i for i in range(len(names)) if names[i] in positions]
    channels, src, sites, dst = assigned_sites({names[i]: positions[names[i]] for i in rows}, onto=onto)
    if channels and not sites:  # only with onto=: a montage of bipolar derivations, or one off this cap
        raise EEGInputError(f"{name}: none of the electrodes to interpolate onto ({_listed(list(onto))}) lies "
                            f"within {MAX_POSITION_DEGREES:g} degrees of this cap's channels; read it as it is")
    if not sites:
        raise EEGInputError(f"{name}: place='splines' needs 8 or more channels with positions "
                            f"({len(rows)} have one); give the cap's montage (--montage NAME|FILE)")
    rest = [i for i in range(len(names)) if names[i] not in set(channels)]
    measured = {classify(rename.get(names[i], names[i])).name for i in rest if eeg_like(i)}
    keep = [k for k, site in enumerate(sites) if site not in measured]  # a site read by name stays as recorded
    sites, dst = [sites[k] for k in keep], dst[keep]
    if not sites:  # every site the cap reaches is named by a channel of its own: nothing to interpolate
        return data, names, types, positions, meta
    at = {n: i for i, n in enumerate(names)}
    x = data[[at[c] for c in channels]]
    if not np.isfinite(x).all() or (np.ptp(x, axis=1) == 0).any():
        bad = [c for c, r in zip(channels, x) if not np.isfinite(r).all() or np.ptp(r) == 0]
        raise EEGInputError(f"{name}: {_listed(bad)} flat or not finite; the splines would spread it over the "
                            "cap: exclude these channels first, or read with place='nearest'")
    raw = mne.io.RawArray(x, mne.create_info(channels, 1.0, "eeg"), verbose=False)
    # on a unit sphere about the fitted centre: caps of any size and origin alike
    raw.set_montage(mne.channels.make_dig_montage(dict(zip(channels, src * 0.09)), coord_frame="head"))
    with mne.utils.use_log_level("error"):
        onto = raw.interpolate_to(mne.channels.make_dig_montage(dict(zip(sites, dst * 0.09)), coord_frame="head"),
                                  origin=(0.0, 0.0, 0.0), method="spline").get_data()
    meta = {**meta, "splines": f"{len(channels)} positioned channels interpolated onto {len(sites)} "
                               + ("sites of the montage asked for" if onto is not None else "10-10 sites")}
    return (np.concatenate([onto, data[rest]]), list(sites) + [names[i] for i in rest],
            ["eeg"] * len(sites) + [types[i] for i in rest], {}, meta)


def recognised_cap(names: list[str]) -> tuple[str | None, dict[str, str], dict]:
    """A cap whose channels are numbered the vendor's way, recognised by its names: BioSemi
    (``A1``…``A32``, ``B1``…: 32 and 64 channels are renamed to the 10-20 names of MNE's
    ``biosemi32/64`` in the vendor's order; 128 to 256 are positioned by ``biosemi128/160/256``)
    or EGI (``E1``…: positioned by the ``GSN-HydroCel`` montage of that size). Returns (montage,
    rename, positions), or (None, {}, {})."""
    biosemi = [n for n in names if re.fullmatch(r"[A-H]([1-9]|[12]\d|3[0-2])", n)]
    egi = [int(n[1:]) for n in names if re.fullmatch(r"E\d{1,3}", n)]
    letters = sorted({n[0] for n in biosemi})
    if len(biosemi) >= 16 and letters == [chr(65 + k) for k in range(len(letters))]:  # A, B, ...: BioSemi's banks
        size = 32 * len(letters)
        montage = {32: "biosemi32", 64: "biosemi64", 128: "biosemi128", 160: "biosemi160", 256: "biosemi256"}.get(size)
        if montage is None:
            return None, {}, {}
        m = mne.channels.make_standard_montage(montage)
        if size <= 64:  # the vendor's order of the 10-20 names: A1 is Fp1, ..., B32 is O2
            vendor = [f"{chr(65 + k // 32)}{k % 32 + 1}" for k in range(size)]
            return montage, {v: t for v, t in zip(vendor, m.ch_names) if v in biosemi}, {}
        pos = m.get_positions()["ch_pos"]
        return montage, {}, {n: pos[n] for n in biosemi if n in pos}
    if len(egi) >= 16:
        top = max(egi)
        montage = next((f"GSN-HydroCel-{k}" for k, lim in ((32, 32), ("65_1.0", 65), (129, 129), (257, 257))
                        if top <= lim), None)
        if montage is None:
            return None, {}, {}
        pos = mne.channels.make_standard_montage(montage).get_positions()["ch_pos"]
        return montage, {}, {n: pos[n] for n in names if n in pos}
    return None, {}, {}


def _positions_of(inst) -> dict:
    """The 3-D positions a file holds, by channel name (none when it has no montage). A Neuroscan
    CNT header holds only the 2-D layout the acquisition software draws its traces on, which MNE
    lifts onto a sphere: not where the electrodes sat, so it is not taken for their positions."""
    if type(inst).__name__ == "RawCNT":  # mne.io does not export the class
        return {}
    found = inst.get_montage()
    return dict(found.get_positions()["ch_pos"]) if found is not None else {}


def _montage_positions(montage: str, names: list[str], name: str) -> dict:
    """Positions of the recording's channels from a standard montage's name or a montage file."""
    try:
        if Path(montage).suffix:
            m = mne.channels.read_custom_montage(montage)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                m = mne.channels.make_standard_montage(montage)
    except (ValueError, OSError, RuntimeError) as err:
        raise EEGInputError(f"{name}: --montage {montage}: {str(err).splitlines()[0]} (a standard montage's "
                            "name, as mne.channels.get_builtin_montages() lists, or a montage file)") from None
    pos = m.get_positions()["ch_pos"]
    found = {n: pos[n] for n in names if n in pos}
    if not found:
        raise EEGInputError(f"{name}: --montage {montage} positions none of the recording's channels "
                            f"({_listed(names)}); is it the cap this recording used?")
    return found


def _build(name, data, names, types, sfreq, ann, subject, rename, drop_bad, strict, meta, positions=None) -> Recording:
    """Keep the EEG electrodes, check them, and say what was set aside and why."""
    if not sfreq > 0:
        raise EEGInputError(f"{name}: sampling rate {sfreq} Hz is not positive; pass the right sfreq")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated and any(classify(rename.get(n, n)).kind == "eeg" for n in repeated):
        raise EEGInputError(f"{name}: channel name(s) {', '.join(map(repr, repeated))} appear more than once, so "
                            "which signal is which electrode cannot be told; rename the duplicates in the file")
    set_aside: dict[str, str] = {}
    keep, electrodes, unknown = [], [], []
    for i, (raw_name, mne_type) in enumerate(zip(names, types)):
        if raw_name in repeated:  # a repeated non-EEG name (two "ECG" channels): neither is used
            set_aside[raw_name] = "duplicate name"
            continue
        ch = classify(rename.get(raw_name, raw_name))
        if mne_type not in ("eeg", "misc") and ch.kind in ("eeg", "unknown"):
            set_aside[raw_name] = mne_type  # the file itself typed it (FIF, BrainVision, EEGLAB)
        elif ch.kind == "eeg":
            keep.append(i)
            electrodes.append(ch.name)
        elif ch.kind == "unknown":
            unknown.append(raw_name)
        else:
            set_aside[raw_name] = ch.kind
    wrong = misplaced(positions or {}, {names[i]: e for i, e in zip(keep, electrodes)})
    if wrong:  # the file's positions say these names are a cap's numbering, not the electrodes they spell
        unknown += [names[i] for i in keep if names[i] in wrong]
        keep, electrodes = [i for i in keep if names[i] not in wrong], \
            [e for i, e in zip(keep, electrodes) if names[i] not in wrong]
    if positions and not frame_agrees(positions, {names[i]: e for i, e in zip(keep, electrodes)}):
        meta = {**meta, "positions": "ignored: they disagree with the channel names (another coordinate frame?)"}
        positions = {}
    placed = by_position(positions or {}, unknown, taken=set(electrodes)) if unknown else {}
    if placed:  # a cap outside the vocabulary, read by where its electrodes sit
        for i, raw_name in enumerate(names):
            if raw_name in placed:
                keep.append(i)
                electrodes.append(placed[raw_name][0])
        order = np.argsort(keep, kind="stable")
        keep, electrodes = [keep[j] for j in order], [electrodes[j] for j in order]
        unknown = [u for u in unknown if u not in placed]
        meta = {**meta, "by_position": {raw: deg for raw, (_, deg) in placed.items()}}
    if unknown and strict:
        raise EEGInputError(
            f"{name}: unknown electrode name(s) {_listed(unknown)}; rename them to 10-05 names "
            "(rename=/card 'rename') or read without strict to set them aside")
    few = sum(has_position(p) for p in (positions or {}).values()) < 8  # too few to find the head's centre
    set_aside.update({u: "unknown" if not has_position((positions or {}).get(u)) else
                      "positioned, but fewer than 8 channels are, too few to place it" if few else
                      f"no free 10-10 electrode within {MAX_POSITION_DEGREES:g} degrees" for u in unknown})
    seen: dict[str, str] = {}
    for i, e in zip(keep, electrodes):
        if e in seen:
            raise EEGInputError(f"{name}: channels {seen[e]!r} and {names[i]!r} are both electrode {e}; "
                                "drop one (rename=) before reading")
        seen[e] = names[i]
    if data.shape[1] == 0:
        raise EEGInputError(f"{name}: the recording is empty (0 samples)")
    signals = np.asarray(data[keep], np.float32) if keep else np.zeros((0, data.shape[1]), np.float32)
    bad = {}
    finite = np.isfinite(signals)
    for j in np.flatnonzero(~finite.all(axis=1)):
        bad[j] = "non-finite"
    for j in range(signals.shape[0]):
        if j not in bad and float(np.ptp(signals[j])) == 0.0:
            bad[j] = "flat"
    if bad:
        if not drop_bad:
            problems = "; ".join(f"{names[keep[j]]!r} is {why}" + (
                f" ({int((~finite[j]).sum())} NaN/Inf samples)" if why == "non-finite" else "")
                for j, why in sorted(bad.items()))
            raise EEGInputError(f"{name}: {problems}; repair or exclude these channels "
                                "(drop_bad=True / --drop-bad sets them aside)")
        for j, why in bad.items():
            set_aside[names[keep[j]]] = why
        good = [j for j in range(len(keep)) if j not in bad]
        signals, keep, electrodes = signals[good], [keep[j] for j in good], [electrodes[j] for j in good]
    if not keep:
        raise EEGInputError(f"{name}: no known EEG electrode among {len(names)} channel(s) (set aside: "
                            f"{_listed([f'{k} ({v})' for k, v in set_aside.items()], quote=False) or 'none'}); "
                            "rename the electrodes to 10-05 names (rename=/card 'rename') or, for a cap of "
                            "numbered channels, give its montage (--montage NAME|FILE)")
    return Recording(signals=np.ascontiguousarray(signals), electrodes=electrodes, sfreq=sfreq,
                     raw_names=[names[i] for i in keep], events=ann, set_aside=set_aside,
                     subject=subject, source=name, meta=meta)


def _listed(items, quote: bool = True, most: int = 8) -> str:
    """The first ``most`` items, then how many more (a 256-channel cap stays one readable line)."""
    shown = [repr(i) if quote else str(i) for i in items[:most]]
    return ", ".join(shown) + (f" and {len(items) - most} more" if len(items) > most else "")
