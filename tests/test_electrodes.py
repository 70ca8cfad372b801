import hashlib

import numpy as np
import pytest

from eegpt.electrodes import ID, NAMES, classify, normalize, positions

# LaBraM's / NeuroLM's channel vocabulary (standard_1020 list of their code).
LABRAM = """FP1 FPZ FP2 AF9 AF7 AF5 AF3 AF1 AFZ AF2 AF4 AF6 AF8 AF10 F9 F7 F5 F3 F1 FZ F2 F4 F6 F8 F10
FT9 FT7 FC5 FC3 FC1 FCZ FC2 FC4 FC6 FT8 FT10 T9 T7 C5 C3 C1 CZ C2 C4 C6 T8 T10 TP9 TP7 CP5 CP3 CP1
CPZ CP2 CP4 CP6 TP8 TP10 P9 P7 P5 P3 P1 PZ P2 P4 P6 P8 P10 PO9 PO7 PO5 PO3 PO1 POZ PO2 PO4 PO6 PO8
PO10 O1 OZ O2 O9 CB1 CB2 IZ O10 T3 T5 T4 T6 M1 M2 A1 A2 CFC1 CFC2 CFC3 CFC4 CFC5 CFC6 CFC7 CFC8
CCP1 CCP2 CCP3 CCP4 CCP5 CCP6 CCP7 CCP8 T1 T2 FTT9h TTP7h TPP9h FTT10h TPP8h TPP10h FP1-F7 F7-T7
T7-P7 P7-O1 FP2-F8 F8-T8 T8-P8 P8-O2 FP1-F3 F3-C3 C3-P3 P3-O1 FP2-F4 F4-C4 C4-P4 P4-O2""".split()


@pytest.mark.parametrize("raw,expected", [
    ("Fp1", "Fp1"), ("FP1", "Fp1"), ("fp1", "Fp1"), ("EEG Fp1", "Fp1"), ("EEG-Fz", "Fz"),
    ("EEG Fp1-REF", "Fp1"), ("C3-LE", "C3"), ("O1-A2", "O1"), ("F4-M1", "F4"), ("Cz (ref)", "Cz"),
    ("Fc5.", "FC5"), ("C3..", "C3"), ("Fpz.", "Fpz"), ("T3", "T7"), ("T4", "T8"), ("T5", "P7"),
    ("T6", "P8"), ("EEG T3-REF", "T7"), ("EEG Fpz-Cz", "Fpz-Cz"), ("EEG Pz-Oz", "Pz-Oz"),
    ("T4-A2", "T8"), ("A1-T3", "A1-T7"), ("CFC5", "FCC5"), ("AFp1h", "AFp1h"),
])
def test_normalize_real_world_names(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw", ["X7", "EEG 0", "EEG-16", "Fp1-X", "Cz-Fz", "", "Fp1-F3-C3"])
def test_unknown_names_are_not_guessed(raw):
    assert normalize(raw) is None
    assert classify(raw).kind == "unknown"


@pytest.mark.parametrize("raw,kind", [
    ("ECG ECG", "ecg"), ("EKG", "ecg"), ("EOG horizontal", "eog"), ("HEOG", "eog"), ("LOC", "eog"),
    ("EMG submental", "emg"), ("Resp oro-nasal", "resp"), ("Marker0", "stim"), ("STI 014", "stim"),
    ("Status", "stim"), ("Event marker", "stim"), ("timestamps", "misc"), ("Right AUX", "misc"),
    ("Temp rectal", "misc"), ("EEG A2-A1", "reference"), ("M1-M2", "reference"),
])
def test_non_eeg_channels_are_recognised(raw, kind):
    assert classify(raw).kind == kind


def test_labram_vocabulary_is_covered():
    missing = [n for n in LABRAM if normalize(n) is None]
    assert missing == []


def test_ids_are_frozen():
    # Changing the vocabulary's order or content invalidates every trained electrode embedding.
    assert len(NAMES) == 374
    assert NAMES[:4] == ("Fp1", "Fpz", "Fp2", "AF9") and ID["Cz"] == 41
    digest = hashlib.sha256(" ".join(NAMES).encode()).hexdigest()[:12]
    assert digest == "e6b6ac1c0ce7", digest


def test_positions_come_from_mne_and_are_distinct():
    pos = positions()
    assert pos.shape == (len(NAMES), 3) and np.isfinite(pos).all()
    assert (np.linalg.norm(pos, axis=1) > 0.05).all()  # on the scalp, in metres
    # left hemisphere names have negative x, right positive
    assert pos[ID["C3"], 0] < 0 < pos[ID["C4"], 0]
    # a bipolar derivation sits between its electrodes
    np.testing.assert_allclose(pos[ID["Fpz-Cz"]], (pos[ID["Fpz"]] + pos[ID["Cz"]]) / 2, rtol=1e-6)
