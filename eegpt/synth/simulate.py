"""Simulating the embedded synthetic corpus: subjects, signal components and each task's class
effects (what a recording holds, and why, is in the package docstring, :mod:`eegpt.synth`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from eegpt.electrodes import classify, position

DEAP_32 = ("Fp1 AF3 F3 F7 FC5 FC1 C3 T7 CP5 CP1 P3 P7 PO3 O1 Oz Pz Fp2 AF4 Fz F4 F8 FC6 FC2 Cz C4 "
           "T8 CP6 CP2 P4 P8 PO4 O2").split()
EEGMMIDB_64 = ("Fc5. Fc3. Fc1. Fcz. Fc2. Fc4. Fc6. C5.. C3.. C1.. Cz.. C2.. C4.. C6.. Cp5. Cp3. Cp1. "
               "Cpz. Cp2. Cp4. Cp6. Fp1. Fpz. Fp2. Af7. Af3. Afz. Af4. Af8. F7.. F5.. F3.. F1.. Fz.. "
               "F2.. F4.. F6.. F8.. Ft7. Ft8. T7.. T8.. T9.. T10. Tp7. Tp8. P7.. P5.. P3.. P1.. Pz.. "
               "P2.. P4.. P6.. P8.. Po7. Po3. Poz. Po4. Po8. O1.. Oz.. O2.. Iz..").split()
EEGMAT_19 = [f"EEG {n}" for n in "Fp1 Fp2 F3 F4 F7 F8 T3 T4 C3 C4 T5 T6 P3 P4 O1 O2 Fz Cz Pz".split()]
SLEEP_EDF = ["EEG Fpz-Cz", "EEG Pz-Oz"]
MUSE_4 = ["TP9", "AF7", "AF8", "TP10"]


@dataclass(frozen=True)
class TaskSpec:
    """How one task's recordings look."""

    channels: tuple[str, ...]  # as written in the EDF
    extra: tuple[str, ...]     # non-EEG channels written beside them (set aside by the reader)
    sfreq: float
    classes: tuple[str, ...]


TASK_SPECS: dict[str, TaskSpec] = {
    "ER": TaskSpec(tuple(DEAP_32), (), 128.0, ("HVHA", "HVLA", "LVHA", "LVLA")),
    "MI": TaskSpec(tuple(EEGMMIDB_64), (), 160.0, ("left_fist", "right_fist", "both_fists", "feet")),
    "MW": TaskSpec(tuple(EEGMAT_19), ("EEG A2-A1", "ECG ECG"), 500.0, ("rest", "arithmetic")),
    "SS": TaskSpec(tuple(SLEEP_EDF), ("EOG horizontal", "EMG submental"), 100.0,
                   ("W", "N1", "N2", "N3", "REM")),
    "CM": TaskSpec(tuple(MUSE_4), (), 256.0, ("face", "house")),
}
MEAS_DATE = dt.datetime(2020, 1, 1, 9, 0, 0, tzinfo=dt.timezone.utc)  # fixed: byte-identical files


@dataclass(frozen=True)
class Subject:
    """Traits that make one synthetic person unlike another, shared across their tasks."""

    index: int
    age: int
    sex: str
    alpha_peak: float   # Hz
    alpha_gain: float
    beta_exponent: float  # of the 1/f background
    responsiveness: float  # scales every class effect
    line_freq: float
    noise_uv: float

    @property
    def id(self) -> str:
        return f"sub-{self.index:03d}"


def make_subject(seed: int, index: int) -> Subject:
    """The synthetic subject ``index`` of corpus ``seed``: demographics and the traits its EEG is drawn from."""
    rng = np.random.default_rng([seed, index, 0])
    return Subject(index=index, age=int(rng.integers(19, 70)), sex=str(rng.choice(["F", "M"])),
                   alpha_peak=float(np.clip(rng.normal(10.0, 0.9), 8.0, 12.5)),
                   alpha_gain=float(rng.lognormal(0.0, 0.35)),
                   beta_exponent=float(rng.uniform(1.3, 2.0)),
                   responsiveness=float(rng.uniform(0.55, 1.35)),
                   line_freq=float(rng.choice([50.0, 60.0])), noise_uv=float(rng.uniform(0.8, 2.0)))


# ----------------------------------------------------------------------------- signal components

class _Head:
    """Electrodes of one recording, in canonical names and positions, for spatial effects."""

    def __init__(self, electrodes: list[str], at: np.ndarray | None = None):
        self.names = electrodes
        self.pos = np.stack([position(e) for e in electrodes]).astype(np.float64) if at is None \
            else np.asarray(at, np.float64)
        d2 = ((self.pos[:, None] - self.pos[None]) ** 2).sum(-1)
        mix = np.exp(-d2 / (2 * 0.035 ** 2))  # volume conduction over ~3.5 cm
        self.mix = mix / np.sqrt((mix ** 2).sum(1, keepdims=True))

    def near(self, *targets: str, width: float = 0.04) -> np.ndarray:
        """Topography [C] in [0, 1]: Gaussian around the named 10-05 sites."""
        w = np.zeros(len(self.names))
        for t in targets:
            d2 = ((self.pos - position(t)) ** 2).sum(-1)
            w = np.maximum(w, np.exp(-d2 / (2 * width ** 2)))
        return w


def _spectral_noise(rng, n_ch: int, n: int, sfreq: float, shape) -> np.ndarray:
    """Gaussian noise [n_ch, n] with power spectrum ``shape(f)``, unit variance per channel."""
    freqs = np.fft.rfftfreq(n, 1 / sfreq)
    amp = np.sqrt(shape(freqs))
    spec = (rng.standard_normal((n_ch, freqs.size)) + 1j * rng.standard_normal((n_ch, freqs.size))) * amp
    x = np.fft.irfft(spec, n, axis=1)
    return x / (x.std(axis=1, keepdims=True) + 1e-12)


def _band(rng, head: _Head, n: int, sfreq: float, f0: float, bw: float) -> np.ndarray:
    """A narrow-band rhythm around ``f0`` (Hz), spatially smooth, unit variance."""
    x = _spectral_noise(rng, len(head.names), n, sfreq, lambda f: np.exp(-0.5 * ((f - f0) / bw) ** 2))
    x = head.mix @ x
    return x / (x.std(axis=1, keepdims=True) + 1e-12)


def _envelope(n: int, sfreq: float, segments, values, base=1.0, ramp_s=0.3) -> np.ndarray:
    """Piecewise gain over time: ``base`` outside segments, ``values[i]`` ([C]) inside segment i,
    joined by raised-cosine ramps. Returns [C, n] (or [1, n] when values are scalars)."""
    vals = [np.atleast_1d(np.asarray(v, float)) for v in values]
    n_ch = max([v.size for v in vals] + [1])
    env = np.full((n_ch, n), base, float)
    r = max(1, int(ramp_s * sfreq))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, r))
    for (a, b), v in zip(segments, vals):
        i0, i1 = int(a * sfreq), min(n, int(b * sfreq))
        if i1 <= i0:
            continue
        w = np.ones(i1 - i0)
        k = min(r, (i1 - i0) // 2)
        w[:k], w[len(w) - k:] = ramp[:k], ramp[:k][::-1]
        env[:, i0:i1] += (v[:, None] - base) * w[None]
    return env


def _background(rng, head: _Head, subj: Subject, n: int, sfreq: float) -> np.ndarray:
    """1/f background (µV), spatially correlated, ~10 µV RMS."""
    x = _spectral_noise(rng, len(head.names), n, sfreq,
                        lambda f: 1.0 / np.maximum(f, 0.5) ** subj.beta_exponent)
    return 10.0 * (head.mix @ x)


def _blinks(rng, head: _Head, n: int, sfreq: float, per_min: float = 12.0) -> np.ndarray:
    """Eye blinks: ~250-ms positive bumps, 60-150 µV at Fp1/Fp2, falling off backwards."""
    out = np.zeros((len(head.names), n))
    eyes = np.array([0.0, 0.10, -0.03])
    topo = np.exp(-np.linalg.norm(head.pos - eyes, axis=1) / 0.025)
    for t in np.sort(rng.uniform(0, n / sfreq, rng.poisson(per_min * n / sfreq / 60))):
        width = rng.uniform(0.2, 0.35)
        i0, m = int(t * sfreq), int(width * sfreq)
        bump = np.sin(np.linspace(0, np.pi, m)) ** 2 * rng.uniform(60, 150)
        m = min(m, n - i0)
        out[:, i0:i0 + m] += topo[:, None] * bump[None, :m]
    return out


def _nuisance(rng, head: _Head, subj: Subject, n: int, sfreq: float) -> np.ndarray:
    t = np.arange(n) / sfreq
    line = rng.uniform(0.5, 3.0, (len(head.names), 1)) * np.sin(
        2 * np.pi * subj.line_freq * t + rng.uniform(0, 2 * np.pi, (len(head.names), 1)))
    if subj.line_freq * 2 > sfreq / 2:
        line[:] = 0.0  # the amplifier's anti-alias filter would remove it
    return line + subj.noise_uv * rng.standard_normal((len(head.names), n))


# ----------------------------------------------------------------------------- tasks

def _trials(rng, classes, per_class: int, trial_s: float, rest_s: tuple[float, float], lead_s=2.0):
    """A shuffled trial list [(onset, duration, class_index)] and the total length in seconds."""
    order = rng.permutation(np.repeat(np.arange(len(classes)), per_class))
    t, out = lead_s, []
    for k in order:
        out.append((t, trial_s, int(k)))
        t += trial_s + rng.uniform(*rest_s)
    return out, t + lead_s


def _er(rng, head, subj, sfreq, classes):
    trials, total = _trials(rng, classes, 6, 12.0, (3.0, 5.0))
    n = int(total * sfreq)
    x = _background(rng, head, subj, n, sfreq)
    r = subj.responsiveness
    left, right = head.near("F3", "AF3", "F7", "FC5"), head.near("F4", "AF4", "F8", "FC6")
    post = head.near("Pz", "PO3", "PO4", "O1", "O2", "P3", "P4", width=0.05)
    fronto_temporal = head.near("F7", "F8", "T7", "T8", "FC5", "FC6", width=0.05)
    alpha_v, beta_v, gamma_v = [], [], []
    for _, _, k in trials:
        valence = 1.0 if classes[k].startswith("HV") else -1.0
        arousal = 1.0 if classes[k].endswith("HA") else -1.0
        # Positive valence: relatively more left-frontal activation, i.e. less left alpha.
        alpha_v.append(1.0 + r * (0.15 * valence * (right - left) - 0.10 * arousal * post))
        beta_v.append(1.0 + r * 0.16 * arousal * fronto_temporal)
        gamma_v.append(1.0 + r * 0.20 * arousal * fronto_temporal + r * 0.07 * valence * left)
    seg = [(a, a + d) for a, d, _ in trials]
    alpha = _band(rng, head, n, sfreq, subj.alpha_peak, 1.0)
    beta = _band(rng, head, n, sfreq, 20.0, 4.0)
    gamma = _band(rng, head, n, sfreq, 38.0, 5.0)
    x += 9.0 * subj.alpha_gain * (0.4 + post + 0.5 * (left + right))[:, None] * _envelope(n, sfreq, seg, alpha_v) * alpha
    x += 3.0 * _envelope(n, sfreq, seg, beta_v) * beta
    x += 1.2 * _envelope(n, sfreq, seg, gamma_v) * gamma
    return x, trials


def _mi(rng, head, subj, sfreq, classes):
    trials, total = _trials(rng, classes, 10, 4.0, (2.0, 3.0))
    n = int(total * sfreq)
    x = _background(rng, head, subj, n, sfreq)
    r = subj.responsiveness
    c3, c4, cz = head.near("C3", width=0.03), head.near("C4", width=0.03), head.near("Cz", width=0.03)
    surround = {"left_fist": c3, "right_fist": c4, "both_fists": cz, "feet": np.maximum(c3, c4)}
    focus = {"left_fist": c4, "right_fist": c3, "both_fists": np.maximum(c3, c4), "feet": cz}
    mu_v, beta_v = [], []
    for _, _, k in trials:
        name = classes[k]
        # Event-related desynchronisation over the contralateral hand area, mild surround ERS.
        mu_v.append(1.0 - r * 0.45 * focus[name] + r * 0.15 * surround[name])
        beta_v.append(1.0 - r * 0.35 * focus[name] + r * 0.10 * surround[name])
    seg = [(a, a + d) for a, d, _ in trials]
    sensorimotor = head.near("C3", "C4", "Cz", "CP3", "CP4", "FC3", "FC4", width=0.035)
    mu = _band(rng, head, n, sfreq, subj.alpha_peak + 1.0, 0.9)
    beta = _band(rng, head, n, sfreq, 21.0, 2.5)
    alpha = _band(rng, head, n, sfreq, subj.alpha_peak, 1.0)
    x += 8.0 * sensorimotor[:, None] * _envelope(n, sfreq, seg, mu_v) * mu
    x += 4.0 * sensorimotor[:, None] * _envelope(n, sfreq, seg, beta_v) * beta
    x += 7.0 * subj.alpha_gain * head.near("O1", "O2", "Oz", "POz", width=0.05)[:, None] * alpha
    return x, trials


def _mw(rng, head, subj, sfreq, classes):
    # Alternating 30-s blocks of rest and serial subtraction, as in EEGMAT's two conditions.
    trials, t = [], 2.0
    for b in range(8):
        trials.append((t, 30.0, b % 2))
        t += 30.0 + rng.uniform(1.0, 2.0)
    n = int((t + 2.0) * sfreq)
    x = _background(rng, head, subj, n, sfreq)
    r = subj.responsiveness
    fm = head.near("Fz", "FCz", "AFz", width=0.04)
    par = head.near("Pz", "P3", "P4", "POz", "O1", "O2", width=0.05)
    theta_v = [1.0 + r * 0.28 * fm * (k == 1) for _, _, k in trials]
    alpha_v = [1.0 - r * 0.15 * par * (k == 1) for _, _, k in trials]
    seg = [(a, a + d) for a, d, _ in trials]
    theta = _band(rng, head, n, sfreq, 6.0, 0.8)
    alpha = _band(rng, head, n, sfreq, subj.alpha_peak, 1.0)
    x += 5.0 * (0.3 + fm)[:, None] * _envelope(n, sfreq, seg, theta_v) * theta
    x += 10.0 * subj.alpha_gain * (0.3 + par)[:, None] * _envelope(n, sfreq, seg, alpha_v) * alpha
    return x, trials


_SLEEP_CYCLE = [("W", 8, 14), ("N1", 2, 5), ("N2", 10, 18), ("N3", 8, 16), ("N2", 4, 8), ("REM", 6, 12)]


def _ss(rng, head, subj, sfreq, classes):
    """Referential Fpz/Cz/Pz/Oz activity; the caller forms the Sleep-EDF derivations."""
    stages = []
    for cycle in range(2):
        for stage, lo, hi in _SLEEP_CYCLE:
            stages += [stage] * int(rng.integers(lo, hi + 1) * (0.6 if cycle and stage == "N3" else 1))
    stages += ["W"] * int(rng.integers(3, 7))
    ep = 30.0
    trials = [(i * ep, ep, classes.index(s)) for i, s in enumerate(stages)]
    n = int(len(stages) * ep * sfreq)
    x = 0.6 * _background(rng, head, subj, n, sfreq)
    r = subj.responsiveness
    seg = [(a, a + d) for a, d, _ in trials]
    amp = {  # per-stage band amplitudes (µV): alpha, theta, delta, beta
        "W": (9.0 * subj.alpha_gain, 2.5, 3.0, 3.0), "N1": (2.5, 7.0, 6.0, 1.5),
        "N2": (1.5, 6.0, 12.0, 1.0), "N3": (1.0, 6.0, 40.0, 0.6), "REM": (2.0, 6.5, 5.0, 1.8)}
    post, front = head.near("Pz", "Oz", width=0.05), head.near("Fpz", "Cz", width=0.05)
    bands = [(_band(rng, head, n, sfreq, subj.alpha_peak, 1.0), post),
             (_band(rng, head, n, sfreq, 5.5, 1.2), np.ones(len(head.names))),
             (_band(rng, head, n, sfreq, 1.0, 0.6), 0.5 + front),
             (_band(rng, head, n, sfreq, 22.0, 5.0), np.ones(len(head.names)))]
    for b, (sig, topo) in enumerate(bands):
        # the stage sets the level; responsiveness blends it towards the subject's average night
        vals = [np.mean([v[b] for v in amp.values()]) * (1 - r * 0.6) + amp[classes[k]][b] * r * 0.6
                for _, _, k in trials]
        x += topo[:, None] * _envelope(n, sfreq, seg, vals, base=float(np.mean(vals)), ramp_s=3.0) * sig
    central = head.near("Cz", width=0.05)
    t_sp = np.arange(int(1.2 * sfreq)) / sfreq
    for a, d, k in trials:
        stage = classes[k]
        if stage not in ("N2", "N3"):
            continue
        n_sp = rng.poisson(3.0 if stage == "N2" else 1.0)
        n_kc = rng.poisson(1.5 if stage == "N2" else 0.5)
        for t0 in rng.uniform(a, a + d - 2.0, n_sp):  # sleep spindles: 11-15 Hz, ~1 s, central
            f = rng.uniform(11.5, 14.5)
            burst = 14.0 * r * np.sin(2 * np.pi * f * t_sp) * np.hanning(t_sp.size)
            i0 = int(t0 * sfreq)
            x[:, i0:i0 + burst.size] += central[:, None] * burst
        for t0 in rng.uniform(a, a + d - 2.0, n_kc):  # K-complexes: sharp negative, slower positive
            tt = np.arange(int(1.5 * sfreq)) / sfreq
            kc = 70.0 * r * (-np.exp(-0.5 * ((tt - 0.35) / 0.12) ** 2) + 0.6 * np.exp(-0.5 * ((tt - 0.8) / 0.2) ** 2))
            i0 = int(t0 * sfreq)
            x[:, i0:i0 + kc.size] += (0.4 + front)[:, None] * kc
    return x, trials


def _ss_extra(rng, trials, classes, n, sfreq):
    """EOG and chin EMG for the sleep recordings: eye movements and muscle tone by stage."""
    eog = 5.0 * rng.standard_normal(n)
    emg_level = np.zeros(n)
    for a, d, k in trials:
        stage = classes[k]
        i0, i1 = int(a * sfreq), int((a + d) * sfreq)
        emg_level[i0:i1] = {"W": 12.0, "N1": 7.0, "N2": 5.0, "N3": 4.0, "REM": 1.5}[stage]
        moves = {"W": 6, "N1": 2, "REM": 8}.get(stage, 0)
        for t0 in rng.uniform(a, a + d - 1.0, rng.poisson(moves)):
            width = 0.25 if stage != "N1" else 2.0  # rapid (REM, W) vs slow rolling (N1)
            i = int(t0 * sfreq)
            m = int(width * sfreq)
            eog[i:i + m] += rng.choice([-1, 1]) * 60.0 * np.sin(np.linspace(0, np.pi, m))[: n - i]
    emg = emg_level * rng.standard_normal(n)
    return np.stack([eog, emg])


def _cm(rng, head, subj, sfreq, classes):
    n_trials = 160
    onsets = 2.0 + np.cumsum(rng.uniform(0.9, 1.3, n_trials))
    labels = rng.permutation(np.repeat(np.arange(len(classes)), n_trials // len(classes)))
    trials = [(float(t), 0.2, int(k)) for t, k in zip(onsets, labels)]
    n = int((onsets[-1] + 2.0) * sfreq)
    x = _background(rng, head, subj, n, sfreq)
    x += 8.0 * subj.alpha_gain * head.near("TP9", "TP10", width=0.06)[:, None] * _band(
        rng, head, n, sfreq, subj.alpha_peak, 1.0)
    r = subj.responsiveness
    lateral = head.near("P7", "P8", "TP9", "TP10", "PO7", "PO8", width=0.04)
    right_bias = 1.0 + 0.3 * (head.pos[:, 0] > 0)
    frontal = head.near("Fz", "AF7", "AF8", "Cz", width=0.05)
    occipital = head.near("O1", "O2", "Oz", "PO7", "PO8", width=0.05)
    tt = np.arange(int(0.6 * sfreq)) / sfreq
    gauss = lambda mu, sd: np.exp(-0.5 * ((tt - mu) / sd) ** 2)  # noqa: E731
    for t0, _, k in trials:
        face = classes[k] == "face"
        jitter = rng.normal(0, 0.012)
        gain = max(0.0, rng.normal(1.0, 0.4)) * r
        n170 = (16.0 if face else 5.0) * gain * gauss(0.17 + jitter, 0.03)
        vpp = (8.0 if face else 2.0) * gain * gauss(0.17 + jitter, 0.035)
        p1 = 3.0 * max(0.0, rng.normal(1.0, 0.3)) * gauss(0.10 + jitter, 0.02)
        p2 = (2.0 if face else 6.0) * gain * gauss(0.25 + jitter, 0.05)  # houses: larger P2
        # Induced (not phase-locked) occipito-temporal theta, stronger for faces.
        theta = (8.5 if face else 2.5) * gain * np.sin(
            2 * np.pi * rng.uniform(4.5, 7.0) * tt + rng.uniform(0, 2 * np.pi)) * gauss(0.3, 0.1)
        erp = (-(lateral * right_bias)[:, None] * n170 + frontal[:, None] * vpp
               + (occipital + 0.5 * lateral)[:, None] * (p1 + p2) + lateral[:, None] * theta)
        i0 = int(t0 * sfreq)
        x[:, i0:i0 + tt.size] += erp[:, : n - i0]
    return x, trials


_GENERATORS = {"ER": _er, "MI": _mi, "MW": _mw, "SS": _ss, "CM": _cm}


def simulate(task: str, subj: Subject, seed: int, at: np.ndarray | None = None):
    """Signals of one subject's session: (channel names, [C, T] µV, sfreq, trials). ``at``: the
    electrodes' positions [C, 3] when the cap does not put them at their 10-05 sites (the same
    brain, recorded from elsewhere on the scalp; not for SS's bipolar derivations)."""
    spec = TASK_SPECS[task]
    rng = np.random.default_rng([seed, subj.index, 1 + list(TASK_SPECS).index(task)])
    if task == "SS":  # bipolar derivations from their referential electrodes
        electrodes = ["Fpz", "Cz", "Pz", "Oz"]
    else:
        electrodes = [classify(c).name for c in spec.channels]
    if at is not None and (task == "SS" or len(at) != len(electrodes)):
        raise ValueError(f"at= needs one position per electrode of {task}'s referential montage")
    head = _Head(electrodes, at)
    x, trials = _GENERATORS[task](rng, head, subj, spec.sfreq, spec.classes)
    # whole seconds, so the EDF's 1-s data records need no padding (MNE marks padding as BAD)
    n = int(x.shape[1] // spec.sfreq * spec.sfreq)
    x = x[:, :n]
    x += _blinks(rng, head, n, spec.sfreq, per_min=12.0 if task != "SS" else 3.0)
    x += _nuisance(rng, head, subj, n, spec.sfreq)
    if task == "SS":
        x = np.stack([x[0] - x[1], x[2] - x[3]])
    gains = rng.uniform(0.9, 1.1, (x.shape[0], 1))
    x = x * gains
    names = list(spec.channels)
    if spec.extra:
        if task == "SS":
            extra = _ss_extra(rng, trials, spec.classes, n, spec.sfreq)
        else:  # EEGMAT's linked-ear reference channel and an ECG
            t = np.arange(n) / spec.sfreq
            beats = np.sin(2 * np.pi * 1.15 * t) ** 63  # ~69 bpm, sharp R peaks
            extra = np.stack([2.0 * rng.standard_normal(n), 800.0 * beats + 20 * rng.standard_normal(n)])
        x = np.concatenate([x, extra])
        names += list(spec.extra)
    return names, x, spec.sfreq, trials
