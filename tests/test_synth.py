import hashlib

import numpy as np
import scipy.signal

from eegpt.recording import read
from eegpt.synth import TASK_SPECS, make_subject, simulate, write_corpus


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    write_corpus(tmp_path / "a", subjects=1, seed=3, tasks=("CM", "SS"))
    write_corpus(tmp_path / "b", subjects=1, seed=3, tasks=("CM", "SS"))
    write_corpus(tmp_path / "c", subjects=1, seed=4, tasks=("CM", "SS"))
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b and len(a) == 6  # 2 EDF + 2 events.tsv + participants.tsv + corpus.json
    assert a["CM/sub-001_task-CM_eeg.edf"] != c["CM/sub-001_task-CM_eeg.edf"]


def test_every_task_reads_back_through_the_real_reader(corpus):
    for task, spec in TASK_SPECS.items():
        rec = read(corpus / task / f"sub-001_task-{task}_eeg.edf")
        assert rec.sfreq == spec.sfreq and len(rec.electrodes) == len(spec.channels)
        assert set(rec.set_aside) == set(spec.extra)
        assert 3 < float(np.median(rec.signals.std(axis=1))) < 60  # plausible µV
        assert np.isfinite(rec.signals).all()


def _band_power(x, sfreq, lo, hi):
    f, p = scipy.signal.welch(x, fs=sfreq, nperseg=int(sfreq), axis=-1)
    return p[..., (f >= lo) & (f < hi)].mean(-1)


def test_motor_imagery_desynchronises_the_contralateral_hand_area():
    subj = make_subject(0, 1)
    names, x, sfreq, trials = simulate("MI", subj, seed=0)
    c3, c4 = names.index("C3.."), names.index("C4..")
    mu = (subj.alpha_peak, subj.alpha_peak + 2.5)
    ratio = {}
    for cls in (0, 1):  # left fist, right fist
        segs = [x[:, int(a * sfreq):int((a + d) * sfreq)] for a, d, k in trials if k == cls]
        p = np.mean([_band_power(s, sfreq, *mu) for s in segs], axis=0)
        ratio[cls] = p[c4] / p[c3]
    # left-hand imagery lowers mu over the right hemisphere (C4), right-hand over C3
    assert ratio[0] < ratio[1]


def test_sleep_stages_carry_their_rhythms():
    subj = make_subject(0, 2)
    names, x, sfreq, trials = simulate("SS", subj, seed=0)
    classes = TASK_SPECS["SS"].classes

    def mean_power(stage, lo, hi, ch):
        segs = [x[ch, int(a * sfreq):int((a + d) * sfreq)] for a, d, k in trials if classes[k] == stage]
        return np.mean([_band_power(s, sfreq, lo, hi) for s in segs])

    assert mean_power("N3", 0.5, 2.0, 0) > 3 * mean_power("W", 0.5, 2.0, 0)    # delta in N3
    assert mean_power("W", 8.0, 12.0, 1) > 2 * mean_power("N3", 8.0, 12.0, 1)  # posterior alpha awake
    assert mean_power("N2", 11.5, 14.5, 0) > mean_power("REM", 11.5, 14.5, 0)  # spindles


def test_a_cap_off_the_10_05_sites_records_the_same_brain_from_elsewhere():
    import pytest

    from eegpt.electrodes import classify, position

    subject = make_subject(0, 1)
    names, x, _, trials = simulate("MW", subject, 0)
    sites = np.stack([position(classify(c).name) for c in TASK_SPECS["MW"].channels])
    n = len(sites)
    same = simulate("MW", subject, 0, at=sites)[1]
    np.testing.assert_array_equal(same, x)  # at the 10-05 sites: the corpus's recording itself
    moved = sites.copy()
    moved[0] = sites[1]  # Fp1's electrode placed where Fp2's is: it records what Fp2's does, not the same noise
    y = simulate("MW", subject, 0, at=moved)[1]
    assert np.corrcoef(y[0], y[1])[0, 1] > 0.95 > np.corrcoef(x[0], x[1])[0, 1]
    np.testing.assert_array_equal(y[n:], x[n:])  # the reference and ECG channels are not on the cap
    with pytest.raises(ValueError, match="one position per electrode"):
        simulate("MW", subject, 0, at=sites[:3])


def test_the_corpus_writes_the_tasks_the_model_answers():
    """One list of tasks: the corpus's task specifications are keyed by ``eegpt.TASKS``, in order."""
    import eegpt

    assert tuple(TASK_SPECS) == eegpt.TASKS
