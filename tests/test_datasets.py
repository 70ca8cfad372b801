"""The benchmark datasets whose files MNE does not open, built small in the structure their
authors distribute (same keys, shapes, dtypes and label layout) and prepared end to end."""

import pickle

import numpy as np
import pytest
from scipy.io import savemat

from conftest import write_neuroscan_cnt
from eegpt.cards import load_card
from eegpt.cli import main
from eegpt.datasets import CHO_CHANNELS, DEAP_CHANNELS, SEED_CHANNELS, SEED_IV_SESSIONS, SEED_V_EMOTIONS, SEED_V_SESSIONS
from eegpt.errors import EEGInputError
from eegpt.preprocess import Preprocess
from eegpt.recording import read
from eegpt.store import prepare

RNG = np.random.default_rng(0)


def _deap(path, ratings, seconds=11):
    """data_preprocessed_python/sXX.dat: {'data': [trials, 40, samples] at 128 Hz, 'labels': [trials, 4]}."""
    data = 20 * RNG.standard_normal((len(ratings), 40, int(128 * seconds)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"data": data, "labels": np.asarray(ratings, float)}, f, protocol=2)
    return data


def test_deap_pickles_become_quadrant_labelled_trials(tmp_path):
    ratings = [[7, 7, 5, 5], [7.5, 2, 5, 5], [2, 6, 5, 5], [1, 1, 5, 5]]  # HVHA, HVLA, LVHA, LVLA
    data = _deap(tmp_path / "deap" / "data_preprocessed_python" / "s01.dat", ratings)
    _deap(tmp_path / "deap" / "data_preprocessed_python" / "s27.dat", ratings[::-1])
    rec = read(tmp_path / "deap" / "data_preprocessed_python" / "s01.dat", distributed="deap-python")
    assert rec.electrodes == DEAP_CHANNELS[:32] and rec.sfreq == 128.0
    assert set(rec.set_aside) == set(DEAP_CHANNELS[32:])  # EOG, EMG, GSR, ... never reach the model
    assert list(rec.events.description) == ["HVHA", "HVLA", "LVHA", "LVLA"]
    assert np.allclose(rec.events.onset, [3, 14, 25, 36]) and np.allclose(rec.events.duration, 8)
    n = data.shape[2]
    assert np.allclose(rec.signals[:, 2 * n:3 * n], data[2, :32], atol=1e-3)  # trial 3 where its event says
    store = prepare("deap", tmp_path / "deap", tmp_path / "st", workers=1, progress=False)
    assert store.index["subjects"] == ["01", "27"] and store.index["splits"] == {"01": "train", "27": "test"}
    # 8 s after each 3-s baseline: two 4-s windows per trial, every quadrant alike
    assert store.index["counts"]["train"] == {"HVHA": 2, "HVLA": 2, "LVHA": 2, "LVLA": 2}
    with open(tmp_path / "bad.dat", "wb") as f:
        pickle.dump({"data": np.zeros((2, 32, 100)), "labels": np.ones((2, 4))}, f)
    with pytest.raises(EEGInputError, match=r"bad.dat: not laid out as a deap-python file .*\[trials, 40, samples\]"):
        read(tmp_path / "bad.dat", distributed="deap-python")
    (tmp_path / "junk.dat").write_bytes(b"not a pickle at all")
    with pytest.raises(EEGInputError, match="junk.dat: cannot be read as a DEAP Python pickle"):
        read(tmp_path / "junk.dat", distributed="deap-python")


def _write_deap_bdf(path, names, ratings, sfreq=128.0, twente=False):
    """data_original/sXX.bdf: BioSemi channels named in the file and a Status channel (3 fixation
    5 s, 4 video 60 s, 5 fixation 3 s, 1 rating screen) per trial; Twente's files set BioSemi's
    system bits above the trigger bits. Returns each video's first sample."""
    import edfio

    phases = [(3, 5.0), (4, 60.0), (5, 3.0), (1, 4.0)]
    codes, starts = [np.zeros(int(10 * sfreq))], []
    for _ in ratings:
        for code, seconds in phases:
            if code == 4:
                starts.append(sum(len(c) for c in codes))
            codes.append(np.full(int(seconds * sfreq), code))
    status = np.concatenate(codes) + (0x190000 if twente else 0)
    x = 20 * RNG.standard_normal((len(names), len(status)))
    signals = [edfio.BdfSignal(row, sfreq, label=n, physical_dimension="uV", physical_range=(-262144, 262143))
               for n, row in zip(names, x)]
    signals.append(edfio.BdfSignal(status.astype(float), sfreq, label="Status", physical_dimension="Boolean",
                                   physical_range=(-8388608, 8388607)))
    path.parent.mkdir(parents=True, exist_ok=True)
    edfio.Bdf(signals).write(path)
    return x, np.array(starts)


def test_deap_original_bdfs_take_their_labels_from_the_ratings_table(tmp_path):
    root = tmp_path / "deap"
    ratings = {1: [(7, 7), (7.5, 2), (2, 6), (1, 1), (5, 9), (6, 5)], 27: [(1, 1), (8, 8), (3, 7), (9, 2), (4, 4), (6, 6)]}
    geneva = ["Fp1", "AF3", "F3", "Cz", "EXG1", "GSR1", "Resp"]
    x, starts = _write_deap_bdf(root / "data_original" / "s01.bdf", geneva, ratings[1])
    _write_deap_bdf(root / "data_original" / "s27.bdf", ["Cz", "F3", "Fp1", "AF3", "EXG1", "GSR1", "Resp"], ratings[27],
              twente=True)
    (root / "metadata_csv").mkdir()
    rows = [(p, t + 1, 10 + t, 0, v, a) for p, rs in ratings.items() for t, (v, a) in enumerate(rs)]
    lines = ["Participant_id,Trial,Experiment_id,Start_time,Valence,Arousal,Dominance,Liking,Familiarity"]
    lines += [f"{p},{t},{e},{s},{v},{a},5,5,3" for p, t, e, s, v, a in rows[::-1]]  # any row order
    (root / "metadata_csv" / "participant_ratings.csv").write_text("\n".join(lines) + "\n")
    rec = read(root / "data_original" / "s01.bdf", distributed="deap-bdf")
    assert rec.electrodes == ["Fp1", "AF3", "F3", "Cz"] and set(rec.set_aside) == {"EXG1", "GSR1", "Resp", "Status"}
    # each trial's own rating, high above 5: (5, 9) is low valence, (6, 5) low arousal
    assert list(rec.events.description) == ["HVHA", "HVLA", "LVHA", "LVLA", "LVHA", "HVLA"]
    assert np.allclose(rec.events.onset, starts / 128.0) and np.allclose(rec.events.duration, 60.0)
    np.testing.assert_allclose(rec.signals[0], x[0], atol=0.016)  # BioSemi's 1/32-uV step, halved
    twente = read(root / "data_original" / "s27.bdf", distributed="deap-bdf")  # system bits masked off
    assert list(twente.events.description) == ["LVLA", "HVHA", "LVHA", "HVLA", "LVLA", "HVHA"]
    store = prepare("deap-bdf", root, tmp_path / "st", Preprocess(sfreq=128.0), workers=1, progress=False)
    assert store.index["splits"] == {"01": "train", "27": "test"}
    assert store.index["counts"]["train"] == {"HVHA": 15, "HVLA": 30, "LVHA": 30, "LVLA": 15}  # 15 4-s windows a video
    lines.append("1,7,50,0,5,5,5,5,3")  # a seventh rated trial the recording does not hold
    (root / "metadata_csv" / "participant_ratings.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(EEGInputError, match=r"s01.bdf: 6 video starts \(Status code 4\) where the ratings list 7"):
        read(root / "data_original" / "s01.bdf", distributed="deap-bdf")
    (root / "metadata_csv" / "participant_ratings.csv").unlink()
    with pytest.raises(EEGInputError, match=r"s01.bdf: no participant_ratings.csv beside it"):
        read(root / "data_original" / "s01.bdf", distributed="deap-bdf")


def test_seed_iv_sessions_fix_each_trials_emotion(tmp_path):
    """eeg_raw_data/<session>/<subject>_<date>.mat with <initials>_eeg1 ... _eeg24, [62, samples] at 200 Hz."""
    lengths = RNG.integers(800, 1300, 24)
    for session in ("1", "3"):
        folder = tmp_path / "seed_iv" / "eeg_raw_data" / session
        folder.mkdir(parents=True)
        savemat(folder / "2_20150915.mat", {f"ab_eeg{k + 1}": RNG.standard_normal((62, n)) for k, n in enumerate(lengths)})
    rec = read(tmp_path / "seed_iv" / "eeg_raw_data" / "3" / "2_20150915.mat", distributed="seed-iv-mat")
    assert rec.electrodes == SEED_CHANNELS and rec.sfreq == 200.0
    names = ["neutral", "sad", "fear", "happy"]
    assert list(rec.events.description) == [names[k] for k in SEED_IV_SESSIONS["3"]]
    assert np.allclose(rec.events.onset, np.concatenate([[0], np.cumsum(lengths[:-1])]) / 200.0)
    store = prepare("seed-iv", tmp_path / "seed_iv", tmp_path / "st", workers=1, progress=False)
    assert store.index["subjects"] == ["2"] and len(store.index["shards"]) == 2
    per_trial = lengths // 800  # 4-s windows at 200 Hz: one per trial of 800-1,299 samples
    expected = {c: 0 for c in names}
    for session in ("1", "3"):
        for k, n in zip(SEED_IV_SESSIONS[session], per_trial):
            expected[names[k]] += int(n)
    assert store.index["counts"]["train"] == expected
    moved = tmp_path / "flat" / "2_20150915.mat"
    moved.parent.mkdir()
    moved.write_bytes((tmp_path / "seed_iv" / "eeg_raw_data" / "1" / "2_20150915.mat").read_bytes())
    with pytest.raises(EEGInputError, match="in their session's folder 1, 2 or 3"):
        read(moved, distributed="seed-iv-mat")


def test_seed_v_clips_come_from_each_sessions_table_of_seconds(tmp_path):
    """EEG_raw/<subject>_<session>_<date>.cnt, continuous Neuroscan; the clips by the session's
    table. Built at 64 Hz with 11 of its 66 channels (the files are 1000 Hz), so a test stays small."""
    names = ["FP1", "FZ", "CZ", "PZ", "O1", "O2", "CB1", "M1", "M2", "VEO", "HEO"]
    root, sfreq = tmp_path / "SEED-V", 64.0
    files = {"3_1_20180804.cnt": 3400, "3_2_20180811.cnt": 2850, "14_1_20180901.cnt": 3400}
    for fname, seconds in files.items():
        write_neuroscan_cnt(root / "EEG_raw" / fname, names, 20 * RNG.standard_normal((len(names), int(seconds * sfreq))),
                       sfreq)
    x = 20 * RNG.standard_normal((len(names), int(2850 * sfreq)))
    write_neuroscan_cnt(root / "EEG_raw" / "3_2_20180811.cnt", names, x, sfreq)
    rec = read(root / "EEG_raw" / "3_2_20180811.cnt", distributed="seed-v-cnt")
    assert rec.electrodes == ["Fp1", "Fz", "Cz", "Pz", "O1", "O2", "CB1", "M1", "M2"] and rec.sfreq == sfreq
    assert set(rec.set_aside) == {"VEO", "HEO"}  # the eye channels never reach the model
    table = SEED_V_SESSIONS["2"]
    assert list(rec.events.description) == [SEED_V_EMOTIONS[k] for k in table["emotion"]]
    assert np.allclose(rec.events.onset, table["start"])
    assert np.allclose(rec.events.duration, np.subtract(table["end"], table["start"]))
    np.testing.assert_allclose(rec.signals[0], x[0], atol=0.01)  # the samples, in uV
    store = prepare("seed-v", root, tmp_path / "st", Preprocess(sfreq=sfreq), workers=1, progress=False)
    assert set(store.index["subjects"]) == {"3", "14"} and store.index["splits"] == {"3": "train", "14": "test"}
    expected = {c: 0 for c in SEED_V_EMOTIONS}
    for session in ("1", "2"):
        t = SEED_V_SESSIONS[session]
        for a, b, k in zip(t["start"], t["end"], t["emotion"]):
            expected[SEED_V_EMOTIONS[k]] += (b - a) // 4  # 4-s windows within each clip
    assert store.index["counts"]["train"] == expected
    write_neuroscan_cnt(tmp_path / "short" / "5_1_20180804.cnt", names, np.zeros((len(names), 64 * 100)) + 1, sfreq)
    with pytest.raises(EEGInputError, match=r"5_1_20180804.cnt: 100 s long, but session 1's last clip ends at 3359 s"):
        read(tmp_path / "short" / "5_1_20180804.cnt", distributed="seed-v-cnt")
    # a session shipped again as "_repaired": the original is refused rather than counted twice
    write_neuroscan_cnt(tmp_path / "short" / "5_1_20180804_repaired.cnt", names,
                        20 * RNG.standard_normal((len(names), 64 * 3400)), sfreq)
    assert read(tmp_path / "short" / "5_1_20180804_repaired.cnt", distributed="seed-v-cnt").events[0]["onset"] == 30
    with pytest.raises(EEGInputError, match=r"5_1_20180804.cnt: superseded by 5_1_20180804_repaired.cnt"):
        read(tmp_path / "short" / "5_1_20180804.cnt", distributed="seed-v-cnt")
    (tmp_path / "short" / "5_1_20180804.cnt").rename(tmp_path / "short" / "recording.cnt")
    with pytest.raises(EEGInputError, match=r"recording.cnt: SEED-V files are named <subject>_<session 1-3>_<date>"):
        read(tmp_path / "short" / "recording.cnt", distributed="seed-v-cnt")


def test_cho2017_imagery_trials_from_each_cue(tmp_path):
    """sNN.mat: struct eeg with imagery_left / imagery_right [68, samples], imagery_event, srate."""
    n, cues = 512 * 20, [512 * 2, 512 * 9, 512 * 16]
    event = np.zeros(n)
    event[cues] = 1
    left, right = RNG.standard_normal((68, n)) + 100.0, RNG.standard_normal((68, n)) - 50.0
    folder = tmp_path / "cho"
    folder.mkdir()
    savemat(folder / "s03.mat", {"eeg": {"imagery_left": left, "imagery_right": right, "imagery_event": event,
                                         "srate": 512, "n_imagery_trials": 3}})
    rec = read(folder / "s03.mat", distributed="cho2017-mat")
    assert rec.electrodes == CHO_CHANNELS[:64] and set(rec.set_aside) == {"EMG1", "EMG2", "EMG3", "EMG4"}
    assert list(rec.events.description) == ["left_hand"] * 3 + ["right_hand"] * 3
    assert np.allclose(rec.events.onset, [2, 9, 16, 22, 29, 36]) and np.allclose(rec.events.duration, 3)
    assert abs(rec.signals[:, :n].mean()) < 0.05 and abs(rec.signals[:, n:].mean()) < 0.05  # offsets removed
    store = prepare("mibci", folder, tmp_path / "st", workers=1, progress=False)
    assert store.index["counts"]["train"] == {"left_hand": 3, "right_hand": 3} and store.index["window_s"] == 3.0


def test_bci_competition_iv_1_calibration_files(tmp_path, capsys):
    """BCICIV_calib_ds1X.mat: cnt [samples, 59] int16 (0.1 uV), mrk.pos / mrk.y, nfo.fs / clab / classes."""
    clab = ["AF3", "AF4", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6",
            "CFC7", "CFC5", "CFC3", "CFC1", "CFC2", "CFC4", "CFC6", "CFC8", "T7", "C5", "C3", "C1", "Cz", "C2", "C4",
            "C6", "T8", "CCP7", "CCP5", "CCP3", "CCP1", "CCP2", "CCP4", "CCP6", "CCP8", "CP5", "CP3", "CP1", "CPz",
            "CP2", "CP4", "CP6", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "PO1", "PO2", "O1", "O2"]
    cnt = (RNG.standard_normal((100 * 60, 59)) * 300).astype(np.int16)
    pos, y = np.array([201, 1001, 2001, 3001]), np.array([-1, 1, 1, -1])
    folder = tmp_path / "bciciv1"
    folder.mkdir()
    nfo = {"fs": 100, "clab": np.array(clab, dtype=object), "classes": np.array(["left", "foot"], dtype=object)}
    savemat(folder / "BCICIV_calib_ds1a.mat", {"cnt": cnt, "mrk": {"pos": pos, "y": y}, "nfo": nfo})
    rec = read(folder / "BCICIV_calib_ds1a.mat", distributed="bciciv1-mat")
    assert len(rec.electrodes) == 59 and not rec.set_aside and rec.sfreq == 100.0  # BBCI names (CFC5 = FCC5) known
    assert rec.raw_names[:2] == ["AF3", "AF4"] and np.allclose(rec.signals[0], cnt[:, 0] * 0.1, atol=1e-3)
    assert list(rec.events.description) == ["left", "foot", "foot", "left"] and np.allclose(rec.events.onset, [2, 10, 20, 30])
    store = prepare("bciciv-1", folder, tmp_path / "st", workers=1, progress=False)
    assert store.index["counts"]["train"] == {"left_hand": 2, "right_hand": 0, "feet": 2}
    savemat(tmp_path / "BCICIV_eval_ds1a.mat", {"cnt": cnt, "nfo": nfo})
    assert main(["inspect", str(tmp_path / "BCICIV_eval_ds1a.mat"), "--format", "bciciv1-mat"]) == 2
    assert "an evaluation file" in capsys.readouterr().err


def test_a_bids_dataset_prepares_from_a_card(tmp_path, capsys):
    """The layout OpenNeuro serves, written by mne-bids: types from channels.tsv, labels from events.tsv."""
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    root = tmp_path / "ds"
    for sub in ("01", "02"):
        info = mne.create_info(["Fp1", "Cz", "O1", "GSR", "EXG1"], 128.0, ["eeg", "eeg", "eeg", "gsr", "eeg"])
        raw = mne.io.RawArray(RNG.standard_normal((5, 128 * 30)) * 1e-5, info, verbose=False)
        raw.set_annotations(mne.Annotations([2, 10, 18], [4, 4, 4], ["face", "house", "face"]))
        write_raw_bids(raw, BIDSPath(subject=sub, task="faces", datatype="eeg", root=root), format="EDF",
                       allow_preload=True, verbose=False)
    card = tmp_path / "faces.toml"
    card.write_text('''name = "faces"
title = "A BIDS face/house dataset"
task = "CM"
classes = ["face", "house"]
channels = "3 EEG"
sfreq = "128 Hz"
source = "OpenNeuro-style BIDS"
licence = "CC0"

[split]
train = "01"
test = "02"

[files]
layout = "bids"
task = "faces"

[labels]
adapter = "events"
map = { face = "face", house = "house" }

[window]
length_s = 2.0
''')
    assert main(["prepare", str(card), "--source", str(root), "--out", str(tmp_path / "st"), "--workers", "1",
                 "--quiet"]) == 0
    from eegpt.store import Store

    index = Store(tmp_path / "st").index
    assert index["subjects"] == ["01", "02"] and index["splits"] == {"01": "train", "02": "test"}
    assert index["counts"]["train"] == {"face": 4, "house": 2}  # two 2-s windows per 4-s event
    assert index["shards"][0]["set_aside"] == {"GSR": "gsr", "EXG1": "unknown"}
    with pytest.raises(EEGInputError, match="not a BIDS dataset's root"):
        prepare(str(card), tmp_path, tmp_path / "st2", workers=1, progress=False)
    card.write_text(card.read_text().replace('task = "faces"', 'task = "houses"'))
    with pytest.raises(EEGInputError, match="no BIDS EEG recordings of task 'houses'"):
        prepare(str(card), root, tmp_path / "st3", workers=1, progress=False)


def _hypnogram(path, stages):
    """An annotation-only EDF+ as Sleep-EDF and HMC ship their scorings."""
    import edfio

    edfio.Edf(signals=[], annotations=[edfio.EdfAnnotation(o, d, s) for o, d, s in stages]).write(path)


def test_sleep_edf_and_hmc_psg_with_paired_hypnograms(tmp_path):
    from eegpt.synth import write_recording

    folder = tmp_path / "sleep-cassette"
    folder.mkdir()
    names = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "Resp oro-nasal", "EMG submental"]
    write_recording(folder / "SC4001E0-PSG.edf", names, RNG.standard_normal((5, 100 * 300)) * 20, 100.0, [])
    _hypnogram(folder / "SC4001EC-Hypnogram.edf", [(0, 60, "Sleep stage W"), (60, 90, "Sleep stage 2"),
                                                   (150, 30, "Sleep stage R"), (180, 120, "Sleep stage ?")])
    store = prepare("sleep-edf", tmp_path, tmp_path / "st", workers=1, progress=False)
    assert store.index["electrodes"] == ["Fpz-Cz", "Pz-Oz"] and store.index["subjects"] == ["00"]
    assert store.index["counts"]["train"] == {"W": 2, "N1": 0, "N2": 3, "N3": 0, "REM": 1}  # "?" is no stage
    hmc = tmp_path / "hmc"
    hmc.mkdir()
    names = ["EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EEG C3-M2", "EMG chin", "EOG E1-M2", "ECG"]
    write_recording(hmc / "SN001.edf", names, RNG.standard_normal((7, 256 * 150)) * 20, 256.0, [])
    _hypnogram(hmc / "SN001_sleepscoring.edf", [(0, 30, "Lights off"), (0, 60, "Sleep stage W"),
                                                (60, 30, "Sleep stage N1"), (90, 60, "Sleep stage N3")])
    store = prepare("hmc", hmc, tmp_path / "st-hmc", workers=1, progress=False)
    assert set(store.index["electrodes"]) == {"F4", "C4", "O2", "C3"}  # each referenced to the opposite mastoid
    assert store.index["counts"]["train"] == {"W": 2, "N1": 1, "N2": 0, "N3": 2, "REM": 0}


def test_stew_text_files(tmp_path):
    folder = tmp_path / "stew"
    folder.mkdir()
    for sub, level in (("01", "lo"), ("01", "hi"), ("02", "lo")):
        np.savetxt(folder / f"sub{sub}_{level}.txt", RNG.standard_normal((128 * 20, 14)) * 10 + 4000, fmt="%.4f")
    store = prepare("stew", folder, tmp_path / "st", workers=1, progress=False)
    assert len(store.index["electrodes"]) == 14 and store.index["subjects"] == ["01", "02"]
    assert store.index["counts"]["train"] == {"low": 10, "high": 5}  # 20 s in 4-s windows


# BCI Competition IV 2a's channel labels in file order: 22 EEG (17 numbered) and 3 EOG
BCICIV_2A_LABELS = (["EEG-Fz", "EEG-0", "EEG-1", "EEG-2", "EEG-3", "EEG-4", "EEG-5", "EEG-C3", "EEG-6", "EEG-Cz",
                     "EEG-7", "EEG-C4", "EEG-8", "EEG-9", "EEG-10", "EEG-11", "EEG-12", "EEG-13", "EEG-14", "EEG-Pz",
                     "EEG-15", "EEG-16"] + ["EOG-left", "EOG-central", "EOG-right"])


def _gdf1(path, labels, data_uv, sfreq, events):
    """A GDF 1.25 file (the layout MNE's reader parses): 256-byte fixed header, 256 bytes per
    channel, int16 samples in 1-s records, then an event table (mode 1: positions and types)."""
    n_ch, n = data_uv.shape
    records = n // sfreq
    digital = np.clip(np.round(data_uv[:, :records * sfreq] / 0.1), -32767, 32767).astype("<i2")  # 0.1 µV a step

    def field(text, size):
        return text.encode("latin-1").ljust(size, b" ")

    head = (field("GDF 1.25", 8) + field("X 1 subject", 80) + field("recording", 80) + field("2008060110000000", 16)
            + np.int64(256 * (n_ch + 1)).tobytes() + bytes(24) + bytes(20) + np.int64(records).tobytes()
            + np.array([1, 1], "<u4").tobytes() + np.uint32(n_ch).tobytes())
    head += b"".join(field(x, 16) for x in labels) + field("", 80) * n_ch + field("uV", 8) * n_ch
    head += (np.full(n_ch, -3276.7, "<f8").tobytes() + np.full(n_ch, 3276.7, "<f8").tobytes()
             + np.full(n_ch, -32767, "<i8").tobytes() + np.full(n_ch, 32767, "<i8").tobytes())
    head += field("", 80) * n_ch + np.full(n_ch, sfreq, "<i4").tobytes() + np.full(n_ch, 3, "<i4").tobytes()  # type 3: int16
    head += bytes(32 * n_ch)
    body = digital.reshape(n_ch, records, sfreq).transpose(1, 0, 2).tobytes()  # record by record, channel by channel
    pos, typ = np.array([p for p, _ in events], "<u4") + 1, np.array([t for _, t in events], "<u2")  # 1-based
    table = bytes([1]) + int(sfreq).to_bytes(3, "little") + np.uint32(len(events)).tobytes() + pos.tobytes() + typ.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + body + table)
    return digital * 0.1


def test_bciciv_2a_gdf_sessions_prepare_with_their_cues(tmp_path):
    sfreq, trial = 250, 8 * 250
    cues = [769, 770, 771, 772, 770, 769]
    folder = tmp_path / "BCICIV_2a_gdf"
    for subject, session in (("1", "T"), ("7", "T"), ("8", "T"), ("8", "E")):
        events = [(0, 32766)]  # a new run
        for k, cue in enumerate(cues):  # trial start (768), the cue 2 s later: the 2008 paradigm's timing
            events += [(k * trial, 768), (k * trial + 2 * sfreq, cue if session == "T" else 783)]
        data = 20 * RNG.standard_normal((25, len(cues) * trial + 2 * sfreq))
        written = _gdf1(folder / f"A0{subject}{session}.gdf", BCICIV_2A_LABELS, data, sfreq, events)
    rec = read(folder / "A08E.gdf", rename=load_card("bciciv-2a").read["rename"])
    assert rec.sfreq == 250.0 and set(rec.set_aside) == {"EOG-left", "EOG-central", "EOG-right"}
    assert len(rec.electrodes) == 22 and rec.electrodes[:3] == ["Fz", "FC3", "FC1"]
    assert np.allclose(rec.signals[rec.raw_names.index("EEG-Cz")], written[9], atol=1e-3)  # µV, where the file put it
    store = prepare("bciciv-2a", folder, tmp_path / "st", workers=1, progress=False)
    assert store.index["splits"] == {"1": "train", "7": "val", "8": "test"}
    assert store.index["counts"]["train"] == {"left_hand": 2, "right_hand": 2, "feet": 1, "tongue": 1}
    assert store.index["counts"]["test"] == {"left_hand": 2, "right_hand": 2, "feet": 1, "tongue": 1}  # E yields none
    assert len(store.index["electrodes"]) == 22 and "FC3" in store.index["electrodes"]
