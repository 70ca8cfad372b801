"""The electrode vocabulary: canonical names, stable integer ids, 3-D positions, name normalisation.

Every electrode the model can see has one canonical name and one id, the index of its learnable
electrode embedding. The ids are frozen here (not derived from MNE at run time) so that a newer MNE
can never shift them under a trained model; positions do come from MNE's standard montages.

Vocabulary, in id order:
  1. the 339 names of the 10-05 system (MNE's ``colin27_1005`` montage; T3/T4/T5/T6 are aliases),
  2. names some datasets use that the 10-05 set lacks but MNE positions elsewhere
     (O9/O10 from ``colin27_1020``; T1/T2/CB1/CB2 from ``colin27_postfixed``),
  3. the bipolar derivations of the public datasets (TUH "double banana" and its temporal chain,
     CHB-MIT, Sleep-EDF); a derivation sits at the midpoint of its two electrodes. ("T4-A2" is T8
     referenced to A2, so it normalises to T8 and needs no entry.)

Together they cover the NeuroLM/LaBraM channel vocabulary (``tests/test_electrodes.py`` checks it).
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass

import numpy as np

_TEN_05 = """
Fp1 Fpz Fp2 AF9 AF7 AF5 AF3 AF1 AFz AF2 AF4 AF6 AF8 AF10 F9 F7 F5 F3 F1 Fz F2 F4 F6 F8 F10 FT9
FT7 FC5 FC3 FC1 FCz FC2 FC4 FC6 FT8 FT10 T9 T7 C5 C3 C1 Cz C2 C4 C6 T8 T10 TP9 TP7 CP5 CP3 CP1
CPz CP2 CP4 CP6 TP8 TP10 P9 P7 P5 P3 P1 Pz P2 P4 P6 P8 P10 PO9 PO7 PO5 PO3 PO1 POz PO2 PO4 PO6
PO8 PO10 O1 Oz O2 I1 Iz I2 AFp9h AFp7h AFp5h AFp3h AFp1h AFp2h AFp4h AFp6h AFp8h AFp10h AFF9h
AFF7h AFF5h AFF3h AFF1h AFF2h AFF4h AFF6h AFF8h AFF10h FFT9h FFT7h FFC5h FFC3h FFC1h FFC2h FFC4h
FFC6h FFT8h FFT10h FTT9h FTT7h FCC5h FCC3h FCC1h FCC2h FCC4h FCC6h FTT8h FTT10h TTP9h TTP7h
CCP5h CCP3h CCP1h CCP2h CCP4h CCP6h TTP8h TTP10h TPP9h TPP7h CPP5h CPP3h CPP1h CPP2h CPP4h CPP6h
TPP8h TPP10h PPO9h PPO7h PPO5h PPO3h PPO1h PPO2h PPO4h PPO6h PPO8h PPO10h POO9h POO7h POO5h
POO3h POO1h POO2h POO4h POO6h POO8h POO10h OI1h OI2h Fp1h Fp2h AF9h AF7h AF5h AF3h AF1h AF2h
AF4h AF6h AF8h AF10h F9h F7h F5h F3h F1h F2h F4h F6h F8h F10h FT9h FT7h FC5h FC3h FC1h FC2h FC4h
FC6h FT8h FT10h T9h T7h C5h C3h C1h C2h C4h C6h T8h T10h TP9h TP7h CP5h CP3h CP1h CP2h CP4h CP6h
TP8h TP10h P9h P7h P5h P3h P1h P2h P4h P6h P8h P10h PO9h PO7h PO5h PO3h PO1h PO2h PO4h PO6h PO8h
PO10h O1h O2h I1h I2h AFp9 AFp7 AFp5 AFp3 AFp1 AFpz AFp2 AFp4 AFp6 AFp8 AFp10 AFF9 AFF7 AFF5
AFF3 AFF1 AFFz AFF2 AFF4 AFF6 AFF8 AFF10 FFT9 FFT7 FFC5 FFC3 FFC1 FFCz FFC2 FFC4 FFC6 FFT8 FFT10
FTT9 FTT7 FCC5 FCC3 FCC1 FCCz FCC2 FCC4 FCC6 FTT8 FTT10 TTP9 TTP7 CCP5 CCP3 CCP1 CCPz CCP2 CCP4
CCP6 TTP8 TTP10 TPP9 TPP7 CPP5 CPP3 CPP1 CPPz CPP2 CPP4 CPP6 TPP8 TPP10 PPO9 PPO7 PPO5 PPO3 PPO1
PPOz PPO2 PPO4 PPO6 PPO8 PPO10 POO9 POO7 POO5 POO3 POO1 POOz POO2 POO4 POO6 POO8 POO10 OI1 OIz
OI2 M1 M2 A1 A2
""".split()

# Name -> the MNE montage that positions it (all colin27 montages share one head and frame).
_EXTRA = {"O9": "colin27_1020", "O10": "colin27_1020", "T1": "colin27_postfixed",
          "T2": "colin27_postfixed", "CB1": "colin27_postfixed", "CB2": "colin27_postfixed"}

_BIPOLAR = """
Fp1-F7 F7-T7 T7-P7 P7-O1 Fp2-F8 F8-T8 T8-P8 P8-O2 Fp1-F3 F3-C3 C3-P3 P3-O1 Fp2-F4 F4-C4 C4-P4
P4-O2 A1-T7 T7-C3 C3-Cz Cz-C4 C4-T8 Fz-Cz Cz-Pz P7-T7 T7-FT9 FT9-FT10 FT10-T8 Fpz-Cz Pz-Oz
""".split()

NAMES: tuple[str, ...] = tuple(_TEN_05 + list(_EXTRA) + _BIPOLAR)
"""Canonical electrode names; ``NAMES[i]`` is the electrode with id ``i``."""

# Old and vendor names that denote a 10-05 position. The CFC/CCP names are the older combinatorial
# (Sharbrough) labels of the rows between C and FC / C and CP, used by LaBraM's vocabulary.
ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8",
           **{f"CFC{i}": f"FCC{i}" for i in range(1, 7)}, "CFC7": "FTT7", "CFC8": "FTT8",
           "CCP7": "TTP7", "CCP8": "TTP8"}

# Electrodes that serve as a recording reference: "X-A1" means X referenced to A1.
REFERENCE_ELECTRODES = {"A1", "A2", "M1", "M2"}
_REF_SUFFIXES = {"REF", "LE", "RE", "AR", "AVG", "AV", "CAR", "LM", "A1A2", "M1M2", "AA", "MA"}

_UPPER_TO_NAME = {n.upper(): n for n in NAMES}
_UPPER_TO_NAME.update({alias.upper(): target for alias, target in ALIASES.items()})
ID = {name: i for i, name in enumerate(NAMES)}
"""Canonical name -> electrode id."""

# Channels that are recorded beside EEG but are not EEG, recognised by a word in their name.
# Value: the kind reported as "set aside".
_NON_EEG_WORDS = {
    "ECG": "ecg", "EKG": "ecg", "EOG": "eog", "HEOG": "eog", "VEOG": "eog", "LOC": "eog", "ROC": "eog",
    "VEO": "eog", "HEO": "eog", "VEOU": "eog", "VEOL": "eog", "HEOL": "eog", "HEOR": "eog",  # Neuroscan's
    "EMG": "emg", "CHIN": "emg", "RESP": "resp", "THOR": "resp", "ABD": "resp", "AIRFLOW": "resp",
    "SPO2": "misc", "SAO2": "misc", "PULSE": "misc", "PLETH": "misc", "TEMP": "misc", "LIGHT": "misc",
    "POSITION": "misc", "AUX": "misc", "ACC": "misc", "GYRO": "misc", "PHOTIC": "stim",
    "STATUS": "stim", "TRIGGER": "stim", "TRIG": "stim", "STI": "stim", "STIM": "stim",
    "EVENT": "stim", "MARKER": "stim", "ANNOTATIONS": "stim", "TIMESTAMPS": "misc",
    "TIMESTAMP": "misc", "IBI": "misc", "BURSTS": "misc", "SUPPR": "misc",
}


@dataclass(frozen=True)
class Channel:
    """What a raw channel name turned out to be.

    ``kind`` is ``"eeg"`` (``name`` holds the canonical electrode), ``"reference"``, a non-EEG
    kind (``"ecg"``, ``"eog"``, ``"emg"``, ``"resp"``, ``"stim"``, ``"misc"``) or ``"unknown"``.
    """

    raw: str
    kind: str
    name: str | None = None


def non_eeg_kind(raw: str) -> str | None:
    """The non-EEG kind a channel name announces ("ECG ECG" -> "ecg"), or None."""
    words = re.findall(r"[A-Z0-9]+", raw.upper())
    for word in words:
        base = word.rstrip("0123456789")  # Marker0, STI014, Status1
        if word in _NON_EEG_WORDS or base in _NON_EEG_WORDS:
            return _NON_EEG_WORDS.get(word) or _NON_EEG_WORDS[base]
    return None


def _strip(raw: str) -> str:
    """Remove decoration that never carries the electrode's identity."""
    s = raw.strip()
    s = re.sub(r"^(EEG|EXG)[\s_:-]+", "", s, flags=re.IGNORECASE)  # "EEG Fp1", "EEG-Fz"
    s = re.sub(r"\s*[\(\[].*?[\)\]]\s*$", "", s)  # "Cz (ref)"
    return s.strip(" .")  # eegmmidb pads names with dots: "Fc5.", "C3.."


def _lookup(token: str) -> str | None:
    return _UPPER_TO_NAME.get(token.strip(" .").upper())


def classify(raw: str) -> Channel:
    """Classify one raw channel name; see :func:`normalize` for the rules."""
    kind = non_eeg_kind(raw)
    if kind is not None:
        return Channel(raw, kind)
    s = _strip(raw)
    name = _lookup(s)
    if name is not None and "-" not in name:
        return Channel(raw, "eeg", name)
    parts = [p.strip() for p in re.split(r"\s*-\s*", s) if p.strip()]
    if len(parts) == 2:
        first, second = parts
        a, b = _lookup(first), _lookup(second)
        ref_b = b in REFERENCE_ELECTRODES or second.upper() in _REF_SUFFIXES
        if a in REFERENCE_ELECTRODES and ref_b:
            return Channel(raw, "reference")  # e.g. "EEG A2-A1": the linked-ear reference itself
        if a is not None and ref_b:
            return Channel(raw, "eeg", a)  # "Fp1-REF", "C3-A2", "F4-M1": referential
        if a is not None and b is not None:
            pair = f"{a}-{b}"
            return Channel(raw, "eeg", pair) if pair in ID else Channel(raw, "unknown")
    if name is not None:
        return Channel(raw, "eeg", name)  # bipolar written without spaces and matched directly
    return Channel(raw, "unknown")


def normalize(raw: str) -> str | None:
    """Canonical electrode name of a raw channel name, or None when it is not a known electrode.

    Handles case (``FP1``), prefixes (``EEG Fp1``, ``EEG-Fz``), reference suffixes (``Fp1-REF``,
    ``C3-LE``, ``F4-M1``, ``O1-A2``), padding dots (``Fc5.``), old names (T3->T7, T4->T8, T5->P7,
    T6->P8) and the bipolar derivations of the vocabulary (``EEG Fpz-Cz``). Anything else returns
    None: unknown names are reported by the caller, never guessed.

    Examples
    --------
    >>> normalize("EEG T3-REF"), normalize("Fc5."), normalize("EEG Fpz-Cz"), normalize("X7")
    ('T7', 'FC5', 'Fpz-Cz', None)
    """
    ch = classify(raw)
    return ch.name if ch.kind == "eeg" else None


@functools.lru_cache(maxsize=1)
def positions() -> np.ndarray:
    """3-D positions (metres, MNE head frame) of every electrode, float32 [len(NAMES), 3]."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # montage renames across MNE versions
        montages = {m: mne.channels.make_standard_montage(m).get_positions()["ch_pos"]
                    for m in ("colin27_1005", "colin27_1020", "colin27_postfixed")}
    by_upper = {}
    for m in ("colin27_postfixed", "colin27_1020", "colin27_1005"):  # 10-05 wins on conflicts
        by_upper.update({k.upper(): v for k, v in montages[m].items()})
    out = np.zeros((len(NAMES), 3), np.float32)
    for i, name in enumerate(NAMES):
        if "-" in name:
            a, b = name.split("-")
            out[i] = (by_upper[a.upper()] + by_upper[b.upper()]) / 2
        else:
            out[i] = by_upper[name.upper()]
    return out


def position(name: str) -> np.ndarray:
    """3-D position of one canonical electrode."""
    return positions()[ID[name]]


# ----------------------------------------------------------------------------- caps outside the vocabulary

MAX_POSITION_DEGREES = 10.0
"""How far (angle seen from the head's centre) a positioned channel may sit from the 10-10 electrode
it is read as: about 1.7 cm on an adult head, a third of the 10-10 spacing."""

_TEN_10 = re.compile(r"(Fp|AF|F|FT|FC|T|C|TP|CP|P|PO|O|I)(\d+|z)")


def has_position(p) -> bool:
    """A usable 3-D position (files write NaN or the origin for channels without one)."""
    return p is not None and bool(np.all(np.isfinite(p))) and bool(np.any(p))


def _sphere_centre(xyz: np.ndarray) -> np.ndarray:
    """Centre of the sphere that fits the positions ``xyz`` [N, 3] best, by least squares."""
    return np.linalg.lstsq(np.c_[2 * xyz, np.ones(len(xyz))], (xyz ** 2).sum(1), rcond=None)[0][:3]


def _directions(xyz: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
    """Unit vectors from the centre of the sphere that fits the positions ``fit`` (default: ``xyz``)
    best, by least squares: caps and head models differ in size and origin, not in where on the head
    an electrode sits."""
    d = xyz - _sphere_centre(xyz if fit is None else fit)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _positioned(xyz: dict[str, np.ndarray], rounds: int = 10) -> dict[str, np.ndarray]:
    """{channel: direction from the template head's centre} of the channels with a usable position;
    empty with fewer than 8, too few to place the cap.

    The cap is first centred on the sphere that fits it, then scaled and shifted onto the 10-05
    template by least squares against each channel's nearest 10-10 site, a few rounds (an iterative
    closest point fit without rotation: the frame is taken to be the head frame). The sphere alone is
    not enough: fitted to a cap that covers the upper head only, its centre sits too high, and every
    electrode's direction tilts towards the vertex — on-grid caps read off their own sites."""
    names = [n for n, p in xyz.items() if has_position(p)]
    if len(names) < 8:
        return {}
    x = np.array([xyz[n] for n in names], np.float64)
    d = _directions(x)
    sites, site_xyz, centre = _template()
    for _ in range(rounds):
        y = site_xyz[np.argmax(d @ sites.T, axis=1)]
        xc, yc = x - x.mean(0), y - y.mean(0)
        scale = float((xc * yc).sum() / (xc ** 2).sum())
        if not scale > 0:  # positions that do not resemble a head: keep the sphere's directions
            break
        moved = scale * xc + y.mean(0) - centre
        d = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    return dict(zip(names, d))


@functools.lru_cache(maxsize=1)
def _template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 10-10 sites' directions, their positions (metres, head frame), and the template head's
    centre (fitted on the 10-05 scalp electrodes)."""
    every = [i for i, n in enumerate(NAMES) if "-" not in n and NAMES[i] not in REFERENCE_ELECTRODES]
    xyz = positions().astype(np.float64)
    names, sites = ten_10_sites()
    return sites, xyz[[ID[n] for n in names]], _sphere_centre(xyz[every])


@functools.lru_cache(maxsize=1)
def _scalp() -> dict[str, np.ndarray]:
    """Direction of every single (not bipolar) electrode of the vocabulary, the centre fitted on the
    10-05 scalp electrodes (the ear and mastoid references left out of the fit)."""
    every = [i for i, n in enumerate(NAMES) if "-" not in n]
    fit = [i for i in every if NAMES[i] not in REFERENCE_ELECTRODES]
    xyz = positions().astype(np.float64)
    return dict(zip((NAMES[i] for i in every), _directions(xyz[every], xyz[fit])))


@functools.lru_cache(maxsize=1)
def ten_10_sites() -> tuple[tuple[str, ...], np.ndarray]:
    """The 10-10 electrodes of the vocabulary and their directions."""
    names = tuple(n for n in _scalp() if _TEN_10.fullmatch(n))
    return names, np.array([_scalp()[n] for n in names])


def _angles_to_names(xyz: dict[str, np.ndarray], named: dict[str, str]) -> dict[str, float]:
    """Degrees between each positioned, named channel and the electrode its name spells."""
    d = _positioned(xyz)
    return {raw: float(np.degrees(np.arccos(np.clip(d[raw] @ _scalp()[e], -1.0, 1.0))))
            for raw, e in named.items() if raw in d and e in _scalp()}


def misplaced(xyz: dict[str, np.ndarray], named: dict[str, str], max_degrees: float = 30.0) -> set[str]:
    """Channels named as an ear or mastoid reference (A1, A2, M1, M2) whose position in the file is
    more than ``max_degrees`` from it: a BioSemi cap's ``A1`` sits near the vertex, not on the ear."""
    angles = _angles_to_names(xyz, {r: e for r, e in named.items() if e in REFERENCE_ELECTRODES})
    return {raw for raw, a in angles.items() if a > max_degrees}


def frame_agrees(xyz: dict[str, np.ndarray], named: dict[str, str], max_median: float = 15.0) -> bool:
    """Whether a file's positions agree with its electrode names (the median named electrode within
    ``max_median`` degrees of its name's place); True when too few are named and positioned to tell.
    Positions in another frame (axes swapped) must not place the other channels."""
    angles = _angles_to_names(xyz, {r: e for r, e in named.items() if e not in REFERENCE_ELECTRODES})
    return len(angles) < 8 or float(np.median(list(angles.values()))) <= max_median


def by_position(xyz: dict[str, np.ndarray], which, taken=frozenset(),
                max_degrees: float = MAX_POSITION_DEGREES) -> dict[str, tuple[str, float]]:
    """Channels ``which`` known only by their 3-D positions (a BioSemi ``A1``…``D32`` or EGI ``E1``…
    cap, any frame) read as the nearest 10-10 electrode within ``max_degrees``, each electrode at
    most once (the closest channel wins) and none already ``taken`` by a named channel. ``xyz``
    holds every positioned channel of the recording (8 or more are needed to find the head's
    centre). Returns ``{channel: (electrode, degrees)}``; the others stay unmapped."""
    d = _positioned(xyz)
    rows = [n for n in d if n in set(which)]
    if not rows:
        return {}
    targets, t = ten_10_sites()
    angle = np.degrees(np.arccos(np.clip(np.array([d[n] for n in rows]) @ t.T, -1.0, 1.0)))  # [channel, electrode]
    out, used = {}, set(taken)
    for flat in np.argsort(angle, axis=None):
        i, j = divmod(int(flat), len(targets))
        if angle[i, j] > max_degrees:
            break
        if rows[i] in out or targets[j] in used:
            continue
        out[rows[i]] = (targets[j], round(float(angle[i, j]), 1))
        used.add(targets[j])
    return out


def _surrounded(site: np.ndarray, directions: np.ndarray, reach: float = 60.0) -> bool:
    """Whether a direction lies inside the cap of ``directions`` [C, 3]: inside the convex hull of the
    channels within ``reach`` degrees, seen on the plane touching the sphere there (a gnomonic
    projection keeps great circles straight, so the hull is the spherical one)."""
    from scipy.spatial import Delaunay, QhullError

    near = directions[directions @ site > np.cos(np.radians(reach))]
    if len(near) < 3:
        return False
    e1 = np.cross(site, [0.0, 0.0, 1.0] if abs(site[2]) < 0.9 else [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(site, e1)
    flat = near / (near @ site)[:, None]
    try:
        return bool(Delaunay(np.c_[flat @ e1, flat @ e2]).find_simplex(np.zeros(2)) >= 0)
    except QhullError:  # the channels in reach lie on one line
        return False


def assigned_sites(xyz: dict[str, np.ndarray], max_degrees: float = MAX_POSITION_DEGREES, onto=None):
    """The 10-10 sites assigned to a positioned cap — one per channel, all distinct, as many as can be
    within ``max_degrees`` of their channel, then the total distance least (an optimal assignment) — for
    interpolating the cap onto them: ``(channels, their directions [C, 3], sites, the sites'
    directions [S, 3])``, directions being unit vectors from the template head's centre, the cap
    registered onto it (:func:`_positioned`; the frame's orientation is assumed to be the head
    frame's, as :func:`by_position` assumes).
    With ``onto`` (electrode names, e.g. a model's montage), the sites are instead those of ``onto``
    that the cap covers — within ``max_degrees`` of a channel, or surrounded by channels
    (:func:`_surrounded`) — so the splines interpolate and never extrapolate beyond the cap. Empty
    with fewer than 8 positioned channels."""
    from scipy.optimize import linear_sum_assignment

    d = _positioned(xyz)
    if not d:
        return [], np.zeros((0, 3)), [], np.zeros((0, 3))
    channels = list(d)
    src = np.array([d[n] for n in channels])
    if onto is not None:
        names = [n for n in dict.fromkeys(onto) if n in _scalp()]  # bipolar derivations have no one site
        sites = np.array([_scalp()[n] for n in names]).reshape(-1, 3)
        near = np.degrees(np.arccos(np.clip(src @ sites.T, -1.0, 1.0))).min(0, initial=180.0) <= max_degrees
        covered = np.array([c or _surrounded(site, src) for c, site in zip(near, sites)], bool)
        return channels, src, [n for n, c in zip(names, covered) if c], sites[covered]
    names, sites = ten_10_sites()
    angle = np.degrees(np.arccos(np.clip(src @ sites.T, -1.0, 1.0)))  # [channel, site]
    # one site per channel, all distinct: as many channels as can be within max_degrees of their
    # site (a moved electrode whose own site a neighbour took still gets one), then the total
    # distance least — the 10-10 layout nearest the cap
    rows, cols = linear_sum_assignment(np.where(angle <= max_degrees, angle, 1e6))
    picked = sorted(c for r, c in zip(rows, cols) if angle[r, c] <= max_degrees)
    return channels, src, [names[c] for c in picked], sites[picked]
