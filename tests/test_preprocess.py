import dataclasses

import mne
import numpy as np
import pytest

from eegpt.preprocess import Preprocess, band_edges, filter_resample, preprocess
from eegpt.recording import Recording, read
from eegpt.errors import EEGInputError

from conftest import shared


def _mne_pipeline(raw, cfg):
    """The plain MNE pipeline, resampled on an exact output grid (see the preprocessing guide on why)."""
    l_freq, h_freq, notches = band_edges(cfg, raw.info["sfreq"])
    raw.filter(l_freq, h_freq, verbose="error")
    if notches:
        raw.notch_filter(notches, verbose="error")
    raw.resample(cfg.sfreq, method="polyphase", verbose="error")
    return raw.get_data() * 1e6


def _rel_rms(a, b):
    return float(np.sqrt(((a - b) ** 2).mean()) / np.sqrt((b ** 2).mean()))


def _recording(sfreq=500.0, seconds=60, n_ch=4, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sfreq * seconds)) / sfreq
    x = np.cumsum(rng.standard_normal((n_ch, t.size)), axis=1) * 0.5  # brown-ish noise
    x += 20 * np.sin(2 * np.pi * 10 * t) + 5 * np.sin(2 * np.pi * 50 * t)
    return Recording(x.astype(np.float32), ["C3", "Cz", "C4", "Pz"][:n_ch], sfreq, source="test")


def test_agrees_with_mne_pipeline_on_generated_signal():
    rec = _recording()
    cfg = Preprocess(scale=1.0)
    ours = preprocess(rec, cfg).signals
    info = mne.create_info(rec.electrodes, rec.sfreq, "eeg")
    ref = _mne_pipeline(mne.io.RawArray(rec.signals.astype(float) * 1e-6, info, verbose="error"), cfg)
    assert ours.shape == ref.shape
    assert _rel_rms(ours, ref) < 0.01


def test_agrees_with_mne_pipeline_on_eegmat():
    path = shared("MW", "eegmat", "Subject03_2.edf")
    rec = read(path)
    cfg = Preprocess(scale=1.0)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error").pick(rec.raw_names)
    assert _rel_rms(preprocess(rec, cfg).signals, _mne_pipeline(raw, cfg)) < 0.01


def test_filtering_matches_mne_exactly_without_resampling():
    rec = _recording(sfreq=250.0)
    cfg = Preprocess(scale=1.0, sfreq=None)
    raw = mne.io.RawArray(rec.signals.astype(float) * 1e-6, mne.create_info(rec.electrodes, 250.0, "eeg"),
                          verbose="error")
    raw.filter(0.1, 75.0, verbose="error").notch_filter([50.0], verbose="error")
    assert _rel_rms(filter_resample(rec.signals, 250.0, cfg), raw.get_data() * 1e6) < 1e-5


def test_blocks_give_the_same_result_as_one_pass():
    rec = _recording(seconds=120)
    whole = filter_resample(rec.signals, rec.sfreq, Preprocess(block_s=1000))
    blocks = filter_resample(rec.signals, rec.sfreq, Preprocess(block_s=20))
    assert _rel_rms(blocks, whole) < 1e-4


def test_upsampling_scaling_reference_and_metadata():
    rec = _recording(sfreq=100.0, seconds=30)
    out = preprocess(rec, Preprocess(average_reference=True))
    assert out.sfreq == 256 and out.n_samples == 30 * 256 and out.signals.dtype == np.float32
    np.testing.assert_allclose(out.signals.mean(axis=0), 0, atol=1e-5)
    assert out.unit == "uV*0.01" and out.meta["preprocess"]["h_freq"] == 75.0
    # the upper edge is capped below Nyquist: 100 Hz input -> 45 Hz
    assert band_edges(Preprocess(), 100.0)[1] == pytest.approx(45.0)


def test_rate_too_low_and_too_short():
    with pytest.raises(EEGInputError, match="below the recipe's minimum of 64 Hz"):
        preprocess(_recording(sfreq=32.0))
    short = dataclasses.replace(_recording(), signals=np.zeros((4, 100), np.float32))
    with pytest.raises(EEGInputError, match="at least 1 s"):
        preprocess(short)


def test_the_last_samples_alone_equal_the_end_of_the_whole():
    """A stream needs only its newest window: computed from the input it depends on, it equals the
    end of the whole recording's output (resampling up, none, and down)."""
    from eegpt.preprocess import filter_resample

    rng = np.random.default_rng(0)
    for sfreq, cfg in ((128.0, Preprocess()), (256.0, Preprocess(sfreq=256.0)), (256.0, Preprocess(sfreq=100.0))):
        x = rng.standard_normal((3, int(60 * sfreq))) * 30
        whole = filter_resample(x, sfreq, cfg)
        for last in (1, 1024, whole.shape[1], whole.shape[1] + 7):
            tail = filter_resample(x, sfreq, cfg, last)
            assert tail.shape == whole[:, -last:].shape
            assert np.abs(tail - whole[:, -last:]).max() <= 1e-3 * np.abs(whole).max()
