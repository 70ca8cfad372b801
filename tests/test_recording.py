import gzip

import mne
import numpy as np
import pytest

from eegpt.cli import main
from eegpt.recording import read
from eegpt.errors import EEGInputError
from eegpt.synth import write_recording

from conftest import shared, write_neuroscan_cnt


def _edf(tmp_path, names=("Fp1", "Fp2", "C3", "C4"), sfreq=200.0, seconds=10, fill=None, name="r.edf"):
    rng = np.random.default_rng(0)
    x = 10 * rng.standard_normal((len(names), int(sfreq * seconds)))
    if fill is not None:
        fill(x)
    path = tmp_path / name
    write_recording(path, list(names), x, sfreq, [(1.0, 2.0, "go")])
    return path, x


# ----------------------------------------------------------------- real files (../shared/data)

def test_reads_eegmat_edf():
    rec = read(shared("MW", "eegmat", "Subject00_1.edf"))
    assert rec.sfreq == 500 and rec.signals.shape == (19, 91000) and rec.signals.dtype == np.float32
    assert rec.electrodes[:2] == ["Fp1", "Fp2"] and "T7" in rec.electrodes and "T3" not in rec.electrodes
    assert rec.set_aside == {"EEG A2-A1": "reference", "ECG ECG": "ecg"}
    assert 3 < float(np.median(rec.signals.std(axis=1))) < 50  # µV, not volts


def test_reads_eegmmidb_edf_plus_annotations():
    rec = read(shared("MI", "eegmmidb", "S001R04.edf"))
    assert rec.sfreq == 160 and len(rec.electrodes) == 64 and rec.electrodes[0] == "FC5"
    assert sorted(set(rec.events.description)) == ["T0", "T1", "T2"] and len(rec.events) == 30


def test_reads_muse_csv_with_markers():
    rec = read(shared("CM", "eegnb_n170", "subject1", "session1", "data_2017-09-13-15.30.01.csv.gz"))
    assert rec.electrodes == ["TP9", "AF7", "AF8", "TP10"] and rec.sfreq == 256
    assert rec.set_aside == {"timestamps": "misc", "Right AUX": "misc", "Marker0": "stim"}
    desc = list(rec.events.description)
    assert desc.count("2") == 89 and desc.count("1") == 108  # faces and houses, as in SOURCE.md


def test_refuses_annotation_only_hypnogram():
    with pytest.raises(EEGInputError, match="no signal channels"):
        read(shared("SS", "sleepedf_features", "hypnograms", "SC4001EC-Hypnogram.edf"))


# ----------------------------------------------------------------- formats and objects

def test_edf_roundtrip_and_mne_objects(tmp_path):
    path, x = _edf(tmp_path)
    rec = read(path)
    np.testing.assert_allclose(rec.signals, x, atol=0.01)  # 16-bit EDF quantisation
    assert list(rec.events.description) == ["go"] and rec.events.onset[0] == pytest.approx(1.0)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    assert read(raw).electrodes == rec.electrodes
    fif = tmp_path / "r_raw.fif"
    raw.save(fif, verbose="error")
    np.testing.assert_allclose(read(fif).signals, rec.signals, atol=1e-3)
    epochs = mne.make_fixed_length_epochs(raw, duration=2.0, verbose="error")
    rec_e = read(epochs)
    assert rec_e.signals.shape == (4, 5 * 400) and len(rec_e.events) == 5


def _openbci(path, x, rate, header_row=True):
    n = x.shape[0]
    lines = ["%OpenBCI Raw EEG Data", f"%Number of channels = {n}", f"%Sample Rate = {rate:g} Hz",
             "%Board = OpenBCI_GUI$BoardCytonSerial"]
    if header_row:  # GUI v5/v6
        lines.append(", ".join(["Sample Index"] + [f"EXG Channel {k}" for k in range(n)]
                               + ["Accel Channel 0", "Timestamp", "Timestamp (Formatted)"]))
    for i in range(x.shape[1]):
        lines.append(", ".join([str(i % 256)] + [f"{v:.3f}" for v in x[:, i]] + ["0.0", f"{1614556800 + i / rate:.3f}",
                                                                             "2021-03-01 00:00:00.000"]))
    path.write_text("\n".join(lines) + "\n")


def test_openbci_gui_text_files(tmp_path):
    x = np.random.default_rng(2).standard_normal((8, 500)) * 20
    _openbci(tmp_path / "OpenBCI-RAW-v5.txt", x, 250)
    names = ["Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2"]
    rec = read(tmp_path / "OpenBCI-RAW-v5.txt", ch_names=names)
    assert rec.electrodes == names and rec.sfreq == 250.0 and np.allclose(rec.signals, x, atol=1e-3)
    # without names the GUI's own labels say nothing about placement: a clear line, not a guess
    with pytest.raises(EEGInputError, match="no known EEG electrode among 8 channel.*EXG Channel 0 \\(unknown\\)"):
        read(tmp_path / "OpenBCI-RAW-v5.txt")
    daisy = np.random.default_rng(3).standard_normal((16, 250)) * 20
    _openbci(tmp_path / "OpenBCI-RAW-legacy.txt", daisy, 125, header_row=False)  # Cyton + Daisy, legacy layout
    rec = read(tmp_path / "OpenBCI-RAW-legacy.txt", rename={f"EXG Channel {k}": n for k, n in enumerate(
        ["Fp1", "Fp2", "F7", "F3", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "P4", "P8", "O1"])})
    assert len(rec.electrodes) == 16 and rec.sfreq == 125.0 and np.allclose(rec.signals, daisy, atol=1e-3)


def test_mind_monitor_csv(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 512)) * 30 + 800
    t0 = np.datetime64("2021-03-01T10:00:00.000")
    head = "TimeStamp,Delta_TP9,RAW_TP9,RAW_AF7,RAW_AF8,RAW_TP10,AUX_RIGHT,HeadBandOn,Battery,Elements"
    lines = [head]
    for i in range(512):
        stamp = str(t0 + np.timedelta64(int(i * 1e6 / 256), "us")).replace("T", " ")
        lines.append(f"{stamp},0.5," + ",".join(f"{v:.3f}" for v in x[:, i]) + ",800.0,1,90,")
        if i == 256:  # a marker row: the event, no samples
            lines.append(f"{stamp},,,,,,,,,/muse/elements/blink")
    (tmp_path / "mindMonitor_2021-03-01.csv").write_text("\n".join(lines) + "\n")
    rec = read(tmp_path / "mindMonitor_2021-03-01.csv")
    assert rec.electrodes == ["TP9", "AF7", "AF8", "TP10"] and rec.sfreq == 256.0
    assert np.allclose(rec.signals, x, atol=1e-3)
    assert list(rec.events.description) == ["/muse/elements/blink"] and abs(rec.events.onset[0] - 1.0) < 0.01


def _xdf(path, x, rate, labels, unit, markers):
    """A minimal XDF file as Lab Streaming Layer's recorder writes one: an EEG stream of float32
    samples and a string marker stream (chunks per the XDF specification)."""
    import struct

    def chunk(tag, content):
        body = struct.pack("<H", tag) + content
        return struct.pack("<BI", 4, len(body)) + body

    def varlen(n):
        return struct.pack("<BI", 4, n)

    chans = "".join(f"<channel><label>{c}</label><unit>{unit}</unit></channel>" for c in labels)
    eeg = (f"<?xml version='1.0'?><info><name>amp</name><type>EEG</type><channel_count>{len(labels)}</channel_count>"
           f"<nominal_srate>{rate}</nominal_srate><channel_format>float32</channel_format>"
           f"<desc><channels>{chans}</channels></desc></info>")
    mrk = ("<?xml version='1.0'?><info><name>events</name><type>Markers</type><channel_count>1</channel_count>"
           "<nominal_srate>0</nominal_srate><channel_format>string</channel_format></info>")
    out = b"XDF:" + chunk(1, b"<?xml version='1.0'?><info><version>1.0</version></info>")
    out += chunk(2, struct.pack("<I", 1) + eeg.encode()) + chunk(2, struct.pack("<I", 2) + mrk.encode())
    t0 = 1000.0
    samples = b"".join(b"\x08" + struct.pack("<d", t0 + i / rate) + struct.pack(f"<{len(labels)}f", *x[:, i])
                       for i in range(x.shape[1]))
    out += chunk(3, struct.pack("<I", 1) + varlen(x.shape[1]) + samples)
    marks = b"".join(b"\x08" + struct.pack("<d", t0 + t) + varlen(len(m)) + m.encode() for t, m in markers)
    out += chunk(3, struct.pack("<I", 2) + varlen(len(markers)) + marks)
    path.write_bytes(out)


def test_xdf_lab_streaming_layer_recordings(tmp_path):
    x = np.random.default_rng(5).standard_normal((3, 600)).astype(np.float32) * 2e-5
    _xdf(tmp_path / "rec.xdf", x, 200, ["Fp1", "Cz", "ECG"], "volts", [(1.0, "face"), (2.5, "house")])
    rec = read(tmp_path / "rec.xdf")
    assert rec.electrodes == ["Fp1", "Cz"] and rec.set_aside == {"ECG": "ecg"} and rec.sfreq == 200.0
    assert np.allclose(rec.signals, x[:2] * 1e6, atol=1e-3)  # volts in the stream's description -> µV
    assert list(rec.events.description) == ["face", "house"] and np.allclose(rec.events.onset, [1.0, 2.5])
    (tmp_path / "cut.xdf").write_bytes((tmp_path / "rec.xdf").read_bytes()[:300])
    with pytest.raises(EEGInputError, match="cut.xdf: "):
        read(tmp_path / "cut.xdf")


def test_caps_of_numbered_channels_are_read_by_position(tmp_path, capsys):
    from eegpt.datasets import CHO_CHANNELS

    rng = np.random.default_rng(6)
    # BioSemi 64 as ActiView names it (A1..B32): the vendor's order of the 10-20 names
    vendor = [f"{chr(65 + k // 32)}{k % 32 + 1}" for k in range(64)]
    np.savez(tmp_path / "bs64.npz", data=rng.standard_normal((64, 300)), ch_names=np.array(vendor), sfreq=256.0)
    rec = read(tmp_path / "bs64.npz")
    assert rec.electrodes == CHO_CHANNELS[:64] and rec.meta["cap"].startswith("biosemi64")
    # BioSemi 128 with the positions in the file: A1 sits at the vertex, so it is Cz, not the left ear
    bs128 = mne.channels.make_standard_montage("biosemi128")
    raw = mne.io.RawArray(rng.standard_normal((128, 300)) * 1e-5, mne.create_info(bs128.ch_names, 256.0, "eeg"),
                          verbose=False)
    raw.set_montage(bs128)
    raw.save(tmp_path / "bs128_raw.fif", verbose=False)
    rec = read(tmp_path / "bs128_raw.fif")
    placed = rec.summary()["by_position"]
    assert dict(zip(rec.raw_names, rec.electrodes))["A1"] == "Cz" and "A1" in placed
    assert len(set(rec.electrodes)) == len(rec.electrodes) >= 64 and max(placed.values()) <= 10.0
    assert set(rec.raw_names) | set(rec.set_aside) == set(bs128.ch_names)  # the rest said, not dropped silently
    assert main(["inspect", str(tmp_path / "bs128_raw.fif")]) == 0 and "'A1' -> Cz  (by position" in capsys.readouterr().out
    # EGI's numbering, positioned by MNE's HydroCel montage of that size
    egi = [f"E{k}" for k in range(1, 129)] + ["Cz"]
    np.savez(tmp_path / "egi.npz", data=rng.standard_normal((129, 300)), ch_names=np.array(egi), sfreq=250.0)
    rec = read(tmp_path / "egi.npz")
    assert rec.meta["cap"].startswith("GSN-HydroCel-129") and len(set(rec.electrodes)) == len(rec.electrodes) >= 64
    # a cap of arbitrary names, its positions in a montage file of another size and origin
    ref = mne.channels.make_standard_montage("colin27_1020").get_positions()["ch_pos"]
    picked = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4", "P8",
              "O1", "O2"]
    lines = [f"ch{k + 1} {x:.5f} {y:.5f} {z:.5f}" for k, (x, y, z) in enumerate(1.15 * np.array([ref[n] for n in picked])
                                                                             + [0.01, -0.02, 0.03])]
    (tmp_path / "cap.sfp").write_text("\n".join(lines) + "\n")
    numbered = [f"ch{k + 1}" for k in range(len(picked))]
    np.savez(tmp_path / "numbered.npz", data=rng.standard_normal((len(picked), 300)), ch_names=np.array(numbered),
             sfreq=250.0)
    with pytest.raises(EEGInputError, match=r"no known EEG electrode.*--montage NAME\|FILE"):
        read(tmp_path / "numbered.npz")
    assert read(tmp_path / "numbered.npz", montage=str(tmp_path / "cap.sfp")).electrodes == picked
    # positions in another frame (x and y swapped) disagree with the names: the names win, nothing is placed
    swapped = mne.channels.make_dig_montage(
        {n: np.array([ref[n][1], ref[n][0], ref[n][2]]) for n in picked} | {"X9": ref["Oz"][[1, 0, 2]]}, coord_frame="head")
    raw = mne.io.RawArray(rng.standard_normal((len(picked) + 1, 300)) * 1e-5,
                          mne.create_info(picked + ["X9"], 250.0, "eeg"), verbose=False)
    raw.set_montage(swapped)
    rec = read(raw)
    assert rec.electrodes == picked and rec.set_aside == {"X9": "unknown"} and "ignored" in rec.meta["positions"]
    with pytest.raises(EEGInputError, match="--montage biosemi64 positions none of the recording's channels"):
        read(tmp_path / "numbered.npz", montage="biosemi64")
    with pytest.raises(EEGInputError, match="--montage no-such-cap: "):
        read(tmp_path / "numbered.npz", montage="no-such-cap")


def test_a_cap_off_the_10_10_layout_is_interpolated_onto_its_sites(tmp_path, capsys):
    """place='splines': EGI's HydroCel 129, whose electrodes sit a median 5 degrees from 10-10 sites,
    carrying a smooth field over the head; interpolated onto the sites it covers, the field there is
    nearer the truth, on as many sites, than the nearest electrodes' own samples."""
    from eegpt.electrodes import ten_10_sites, assigned_sites

    cap = mne.channels.make_standard_montage("GSN-HydroCel-129")
    channels, directions, _, _ = assigned_sites(cap.get_positions()["ch_pos"])
    field = np.random.default_rng(11).standard_normal((3, 500)) * 10  # µV along x, y, z of the head
    raw = mne.io.RawArray(directions @ field * 1e-6, mne.create_info(channels, 250.0, "eeg"), verbose=False)
    raw.set_montage(cap)
    site = dict(zip(*ten_10_sites()))
    error = {}
    for place in ("nearest", "splines"):
        rec = read(raw, place=place)
        truth = np.array([site[e] for e in rec.electrodes]) @ field
        error[place] = (np.linalg.norm(rec.signals - truth) / np.linalg.norm(truth), len(rec.electrodes))
    assert error["splines"][0] < 0.75 * error["nearest"][0] and error["splines"][1] >= error["nearest"][1]
    raw.save(tmp_path / "egi_raw.fif", verbose=False)
    assert main(["inspect", str(tmp_path / "egi_raw.fif"), "--place", "splines"]) == 0
    assert "129 positioned channels interpolated onto" in capsys.readouterr().out
    flat = raw.copy()
    flat._data[5] = 0.0
    with pytest.raises(EEGInputError, match="flat or not finite; the splines would spread it"):
        read(flat, place="splines")
    few = mne.io.RawArray(np.ones((4, 10)), mne.create_info(["X1", "X2", "X3", "X4"], 10.0, "eeg"), verbose=False)
    few.set_montage(mne.channels.make_dig_montage(dict(zip(["X1", "X2", "X3", "X4"], np.eye(4, 3) * 0.09 + 0.01)), coord_frame="head"))
    with pytest.raises(EEGInputError, match="needs 8 or more channels with positions"):
        read(few, place="splines")
    with pytest.raises(EEGInputError, match="place='sideways': choose"):
        read(raw, place="sideways")


def test_persyst_lay_files(tmp_path):
    x = (np.random.default_rng(7).standard_normal((1000, 3)) * 100).astype("<i2")  # interleaved int16
    x.tofile(tmp_path / "rec.dat")
    (tmp_path / "rec.lay").write_text(
        "[FileInfo]\nFile=rec.dat\nFileType=Interleaved\nSamplingRate=256\nHeaderLength=0\nCalibration=0.1\n"
        "WaveformCount=3\nDataType=0\n[ChannelMap]\nFp1=1\nCz=2\nEKG=3\n[Patient]\nFirst=A\nLast=B\nSex=Female\n"
        "TestDate=01/02/2020\nTestTime=10:11:12\nBirthDate=03/04/1980\nHand=Right\n[Comments]\n")
    rec = read(tmp_path / "rec.lay")
    assert rec.electrodes == ["Fp1", "Cz"] and rec.set_aside == {"EKG": "ecg"} and rec.sfreq == 256.0
    assert np.allclose(rec.signals, x[:, :2].T * 0.1, atol=1e-4)
    (tmp_path / "bv.vhdr").write_text("Brain Vision Data Exchange Header File Version 1.0\n")
    (tmp_path / "bv.eeg").write_bytes(b"\0" * 64)
    with pytest.raises(EEGInputError, match="a BrainVision data file; read its header bv.vhdr"):
        read(tmp_path / "bv.eeg")


def _nihon_kohden(path, x_uv, sfreq, codes, names, events=()):
    """A Nihon Kohden EEG-1100 recording as its four files lay it out, at the offsets MNE's reader
    follows: the .EEG (one control block, one data block of multiplexed 16-bit samples, each sample
    ending with a marks word), the .21E (electrode code -> name), the .PNT (the date) and the .LOG (events)."""
    import struct

    version = b"EEG-1100A V01.00"
    ctl, block, n = 0x1800, 0x1900, x_uv.shape[1]
    head = bytearray(block + 0x27 + 10 * len(codes))
    head[0:16] = head[0x81:0x91] = version
    head[0x91], head[0x17FE], head[ctl + 17] = 1, 1, 1  # one control block; the waveform flag; one data block
    head[0x92:0x96], head[ctl + 18:ctl + 22] = struct.pack("<I", ctl), struct.pack("<I", block)
    head[block + 0x1A:block + 0x20] = struct.pack("<HI", sfreq, round(n / sfreq * 10))  # rate; length in 0.1 s
    head[block + 0x26] = len(codes)
    for i, code in enumerate(codes):
        head[block + 0x27 + 10 * i] = code
    cal = 6399.902 / 65535  # EEG codes: -3200..3199.902 µV over the 16 bits
    digital = np.round((x_uv + 3200) / cal).astype(np.int64) - 32768
    words = (np.vstack([digital, np.zeros((1, n), np.int64)]) + 0x8000).astype("<u2")
    path.write_bytes(bytes(head) + words.T.tobytes())
    path.with_suffix(".21E").write_text("[ELECTRODE]\n" + "".join(f"{c:04d}={m}\n" for c, m in zip(codes, names)))
    pnt = bytearray(0x50)
    pnt[0:16], pnt[0x40:0x4E] = version, b"20200102101112"
    path.with_suffix(".PNT").write_bytes(bytes(pnt))
    log = bytearray(0x400)
    log[0:16] = log[0x201:0x211] = version
    log[0x91], log[0x92:0x96], log[0x212] = 1, struct.pack("<I", 0x200), len(events)
    for i, (text, second) in enumerate(events):  # 45 bytes each: 20 of text, then hhmmss
        log[0x214 + 45 * i:0x214 + 45 * i + 26] = text.encode().ljust(20, b"\0") + \
            f"{second // 3600:02d}{second // 60 % 60:02d}{second % 60:02d}".encode()
    path.with_suffix(".LOG").write_bytes(bytes(log))


def test_nihon_kohden_files(tmp_path, capsys):
    x = np.random.default_rng(9).standard_normal((5, 2000)) * 30  # µV
    path = tmp_path / "REC.EEG"
    _nihon_kohden(path, x, 200, codes=[0, 1, 4, 19, 42], names=["FP1", "FP2", "C3", "E", "DC01"],
                  events=[("photic 10Hz", 2), ("eyes open", 5)])
    rec = read(path)
    assert rec.electrodes == ["Fp1", "Fp2", "C3"] and rec.sfreq == 200.0 and rec.n_samples == 2000
    assert set(rec.set_aside) == {"E", "DC01"}  # the ground and a DC input are no electrodes
    np.testing.assert_allclose(rec.signals, x[:3], atol=0.05)  # 0.1 µV steps
    assert list(rec.events.description) == ["photic 10Hz", "eyes open"] and list(rec.events.onset) == [2.0, 5.0]
    assert main(["inspect", str(path)]) == 0 and "'E'" in capsys.readouterr().out
    path.write_bytes(path.read_bytes()[:-3000])  # cut short: fewer samples than the header says
    with pytest.raises(EEGInputError, match="REC.EEG: the file ends early .* truncated"):
        read(path)


def _curry(path, x_uv, sfreq, eeg, positions_mm, others=(), events=()):
    """A Curry 8 recording as Curry lays it out: float32 samples in the .cdt, a text .cdt.dpa of
    parameters and one block per channel group (device parameters, labels, sensor positions in mm;
    each list has a parameter section and a START_LIST ... END_LIST), events in the .cdt.cef."""
    def listed(key, rows, params=()):
        return (f"{key} START\n" + "".join(f" {k} = {v}\n" for k, v in params) + f"{key} END\n\n"
                f"{key} START_LIST\t; do not edit\n" + "".join(f"{r}\n" for r in rows) + f"{key} END_LIST\n\n")

    def group(suffix, labels, positions=None):
        text = (f"DEVICE_PARAMETERS{suffix} START\n DataUnit = uV\n NumChanThisGroup = {len(labels)}\n"
                f"DEVICE_PARAMETERS{suffix} END\n\n" + listed(f"LABELS{suffix}", labels, [("ListNrRows", len(labels))]))
        if positions is not None:
            text += listed(f"SENSORS{suffix}", [" ".join(f"{v:.3f}" for v in p) for p in positions],
                           [("ListNrColumns", 3)])
        return text

    n_ch, n = x_uv.shape
    head = (f"FileVersion = 804\nNumSamples = {n}\nNumChannels = {n_ch}\nNumTrials = 1\nSampleFreqHz = {sfreq}\n"
            f"SampleTimeUsec = {1e6 / sfreq}\nTriggerOffsetUsec = 0\nDataFormat = BINARY\nDataSampOrder = SAMPLE\n"
            "DataByteOrder = LITTLE_ENDIAN\nStartYear = 2020\nStartMonth = 1\nStartDay = 2\nStartHour = 10\n"
            "StartMin = 11\nStartSec = 12\nStartMillisec = 0\nAmplifierInfo = \n\n")
    head += group("", eeg, positions_mm) + (group("_OTHERS", others) if others else "")
    head += listed("IMPEDANCE_VALUES", [" ".join(["-1"] * n_ch)] * 10)  # Curry keeps the last ten
    path.with_name(path.name + ".dpa").write_text(head)
    x_uv.T.astype("<f4").tofile(path)  # sample after sample
    if not events:
        return
    numbers = [f"{at} 1 {code} 0 {at} {at} 0 0 0 0 0" for at, code, _ in events]  # 11 numbers per event
    path.with_name(path.name + ".cef").write_text(listed("NUMBER_LIST", numbers) +
                                                  listed("REMARK_LIST", [text for *_, text in events]))


def test_curry_files(tmp_path, capsys):
    """A Curry 8 file read through MNE and Compumedics' curryreader: labels, positions (a numbered
    channel placed by its position), the OTHERS group set aside, µV samples and events."""
    pytest.importorskip("curryreader", reason="MNE reads Curry files with curryreader (a dependency)")
    ref = mne.channels.make_standard_montage("colin27_1005").get_positions()["ch_pos"]
    named = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "Cz"]
    x = np.random.default_rng(10).standard_normal((11, 1000)) * 20
    path = tmp_path / "rec.cdt"
    _curry(path, x, 500, named + ["Ch10"], [ref[n] * 1000 for n in named + ["Oz"]], others=["EKG"],
           events=[(100, 3, "target"), (600, 4, "standard")])
    rec = read(path)
    assert rec.electrodes == named + ["Oz"] and rec.set_aside == {"EKG": "ecg"} and rec.sfreq == 500.0
    placed = rec.summary()["by_position"]
    assert set(placed) == {"Ch10"} and placed["Ch10"] < 5.0  # the head's centre fitted on ten positions
    np.testing.assert_allclose(rec.signals, x[:10], atol=1e-3)
    assert list(rec.events.description) == ["target", "standard"] and list(rec.events.onset) == pytest.approx([0.2, 1.2])
    assert main(["inspect", str(path)]) == 0 and "'Ch10' -> Oz" in capsys.readouterr().out
    path.with_name(path.name + ".cef").unlink()
    _curry(path, x[:4], 500, named[:3] + ["Ch4"], [ref[n] * 1000 for n in named[:3] + ["Oz"]])
    assert read(path).set_aside == {"Ch4": "positioned, but fewer than 8 channels are, too few to place it"}


def test_egi_mff_folders(tmp_path, capsys):
    """An EGI .mff folder as EGI's own library (mffpy) writes it, read through MNE: the HydroCel
    numbering is placed by the positions in the file's coordinates.xml."""
    from datetime import datetime, timezone

    writer = pytest.importorskip("mffpy.writer", reason="the MFF test writes its file with mffpy (the test extra)")
    x = (10 * np.random.default_rng(8).standard_normal((33, 2500))).astype(np.float32)  # µV: 32 electrodes + Cz
    signal = writer.BinWriter(sampling_rate=250, data_type="EEG")
    signal.add_block(x)
    mff = writer.Writer(str(tmp_path / "rec.mff"))
    mff.addxml("fileInfo", recordTime=datetime(2020, 1, 2, 10, 0, tzinfo=timezone.utc))
    mff.add_coordinates_and_sensor_layout("HydroCel GSN 32 1.0")
    mff.addbin(signal)
    mff.write()
    rec = read(tmp_path / "rec.mff")
    placed = rec.summary()["by_position"]
    assert rec.sfreq == 250.0 and rec.signals.shape[1] == 2500 and len(rec.electrodes) >= 20
    assert set(placed) == set(rec.raw_names) - {"Cz"} and max(placed.values()) <= 10.0
    assert dict(zip(rec.raw_names, rec.electrodes))["E9"] == "O1"  # HydroCel 32's E9 sits over O1
    k = rec.raw_names.index("E9")
    np.testing.assert_allclose(rec.signals[k], x[8], atol=1e-3)  # the samples, in µV
    assert main(["inspect", str(tmp_path / "rec.mff")]) == 0 and "'E9' -> O1  (by position" in capsys.readouterr().out


def test_cnt_files_are_tried_as_16_bit_neuroscan_then_ant(tmp_path, monkeypatch):
    # a 16-bit Neuroscan file whose header leaves the sample count 0, as some Scan versions do: MNE's
    # default reading cannot tell the sample width and refuses it; read as int16 it is whole
    x = 30 * np.random.default_rng(8).standard_normal((5, 500))
    names = ["C3", "CZ", "C4", "M1", "VEO"]
    write_neuroscan_cnt(tmp_path / "r.cnt", names, x, 100.0, bytes_per_sample=2, header_samples=0)
    with pytest.raises(RuntimeError, match="set data_format manually"):
        mne.io.read_raw_cnt(tmp_path / "r.cnt", verbose=False)
    rec = read(tmp_path / "r.cnt")
    # the header's display layout (here a circle) is not taken for positions: M1 stays the mastoid
    # rather than being moved to the scalp site its layout point falls on; Neuroscan's VEO is an EOG
    assert rec.electrodes == ["C3", "Cz", "C4", "M1"] and rec.signals.shape == (4, 500)
    assert rec.set_aside == {"VEO": "eog"} and not rec.summary()["by_position"]
    np.testing.assert_allclose(rec.signals, x[:4], atol=0.01)  # the samples, in uV
    write_neuroscan_cnt(tmp_path / "r32.cnt", names, x, 100.0)  # 32-bit, as MNE reads by default
    np.testing.assert_allclose(read(tmp_path / "r32.cnt").signals, x[:4], atol=0.01)

    # neither Neuroscan width: ANT Neuro's eego format (its reader, antio, cannot write one)
    path = tmp_path / "ant.cnt"
    path.write_bytes(b"\0" * 900)
    raw = mne.io.RawArray(x[:2] * 1e-6, mne.create_info(["C3", "C4"], 100.0, "eeg"), verbose=False)
    tried = []

    def ant(p, **k):
        tried.append("ant")
        return raw

    monkeypatch.setattr(mne.io, "read_raw_ant", ant)
    assert read(path).electrodes == ["C3", "C4"] and tried == ["ant"]

    def no_antio(p, **k):  # as MNE says it: a RuntimeError naming the package
        raise RuntimeError("For reading ANT files to work, the module antio>=0.5.0 is needed")

    monkeypatch.setattr(mne.io, "read_raw_ant", no_antio)
    with pytest.raises(EEGInputError, match=r"ant.cnt: cannot be read as CNT \((?!For reading ANT)"):
        read(path)  # the Neuroscan reading's error, not the missing package's

    # a Neuroscan file cut short: its header places the event table beyond the end, and MNE would
    # read on from a recomputed end; refused, not read shorter
    cut = tmp_path / "cut.cnt"
    cut.write_bytes((tmp_path / "r32.cnt").read_bytes()[:3000])
    with pytest.raises(EEGInputError, match=r"cut.cnt: truncated"):
        read(cut)


def test_trigger_channels_become_events(tmp_path):
    import edfio

    # a FIF's STI channel: each change to a non-zero code is an event, a change between codes too
    stim = np.zeros(1000)
    stim[100:150], stim[300:350], stim[350:400] = 5, 7, 2
    info = mne.create_info(["C3", "C4", "STI 014"], 100.0, ["eeg", "eeg", "stim"])
    mne.io.RawArray(np.r_[np.random.default_rng(3).standard_normal((2, 1000)) * 1e-5, stim[None]], info,
                    verbose=False).save(tmp_path / "r_raw.fif", verbose=False)
    rec = read(tmp_path / "r_raw.fif")
    assert list(rec.events.description) == ["5", "7", "2"] and np.allclose(rec.events.onset, [1.0, 3.0, 3.5])
    assert rec.electrodes == ["C3", "C4"] and rec.set_aside == {"STI 014": "stim"}
    # BioSemi's Status with the system bits set above the 16 trigger bits (Twente's DEAP files)
    status = np.full(512 * 6, float(0x190000))
    status[1024:1536] += 4
    signals = [edfio.BdfSignal(np.random.default_rng(4).standard_normal(len(status)) * 20, 512, label=n,
                               physical_dimension="uV", physical_range=(-262144, 262143)) for n in ("Fp1", "Fp2")]
    signals.append(edfio.BdfSignal(status, 512, label="Status", physical_range=(-8388608, 8388607)))
    edfio.Bdf(signals).write(tmp_path / "r.bdf")
    rec = read(tmp_path / "r.bdf")
    assert list(rec.events.description) == ["4"] and np.allclose(rec.events.onset, [2.0])
    # an EDF channel MNE types as stim by its name but that carries an analog signal: no events
    analog = [edfio.EdfSignal(np.random.default_rng(5).standard_normal(1000) * 20, 100, label=n,
                              physical_dimension="uV", physical_range=(-500, 500)) for n in ("Fp1", "Trigger")]
    edfio.Edf(analog).write(tmp_path / "a.edf")
    rec = read(tmp_path / "a.edf")
    assert rec.set_aside == {"Trigger": "stim"} and len(rec.events) == 0


def test_eeglab_epoch_files_are_read_epoch_by_epoch(tmp_path):
    x = np.random.default_rng(1).standard_normal((4, 3, 300)) * 1e-5
    events = np.c_[np.arange(4) * 300, np.zeros(4, int), [1, 2, 2, 1]]
    epochs = mne.EpochsArray(x, mne.create_info(["Fp1", "Cz", "EXG1"], 150.0, "eeg"), events, tmin=-0.2,
                             event_id={"face": 1, "house": 2}, verbose="error")
    epochs.export(tmp_path / "ep.set", verbose="error")  # MNE's EEGLAB exporter (eeglabio)
    rec = read(tmp_path / "ep.set")
    assert rec.electrodes == ["Fp1", "Cz"] and rec.set_aside == {"EXG1": "unknown"}
    assert list(rec.events.description) == ["face", "house", "house", "face"] and np.allclose(rec.events.onset, [0, 2, 4, 6])
    assert np.allclose(rec.signals[1, 300:600], x[1, 1] * 1e6, atol=1e-2)  # the second epoch where its event is


def test_typed_channels_from_the_file_are_set_aside(tmp_path):
    info = mne.create_info(["Fz", "Cz", "VEOG", "EXG1"], 100.0, ["eeg", "eeg", "eog", "emg"])
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((4, 500)) * 1e-5, info, verbose="error")
    rec = read(raw)
    assert rec.electrodes == ["Fz", "Cz"] and rec.set_aside == {"VEOG": "eog", "EXG1": "emg"}


def test_tables_csv_and_npz(tmp_path):
    x = np.random.default_rng(1).standard_normal((3, 1000)).astype(np.float32) * 20
    np.savez(tmp_path / "a.npz", data=x, ch_names=np.array(["C3", "Cz", "C4"]), sfreq=250.0)
    rec = read(tmp_path / "a.npz")
    assert rec.electrodes == ["C3", "Cz", "C4"] and rec.sfreq == 250
    np.testing.assert_allclose(rec.signals, x)
    np.savetxt(tmp_path / "b.txt", x.T)  # no header (STEW style): names and rate given
    rec = read(tmp_path / "b.txt", sfreq=128, ch_names=["AF3", "F7", "F3"])
    assert rec.electrodes == ["AF3", "F7", "F3"] and rec.n_samples == 1000
    with gzip.open(tmp_path / "c.csv.gz", "wt") as f:
        f.write("timestamps,Fp1,Marker0\n")
        for i in range(512):
            f.write(f"{1000 + i / 256:.6f},{x[0, i]:.4f},{1 if i == 100 else 0}\n")
    rec = read(tmp_path / "c.csv.gz")
    assert rec.sfreq == 256 and rec.electrodes == ["Fp1"]
    assert rec.events.onset[0] == pytest.approx(100 / 256) and rec.events.description[0] == "1"


# ----------------------------------------------------------------- bad input

def test_missing_empty_and_garbage_files(tmp_path):
    with pytest.raises(EEGInputError, match="no such file"):
        read(tmp_path / "nope.edf")
    (tmp_path / "empty.edf").write_bytes(b"")
    with pytest.raises(EEGInputError, match="empty"):
        read(tmp_path / "empty.edf")
    (tmp_path / "junk.edf").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(EEGInputError, match="cannot be read as EDF"):
        read(tmp_path / "junk.edf")
    (tmp_path / "x.xyz").write_bytes(b"123")
    with pytest.raises(EEGInputError, match="unrecognised file type"):
        read(tmp_path / "x.xyz")


def test_truncated_edf(tmp_path):
    path, _ = _edf(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(EEGInputError, match="truncated"):
        read(path)


def test_unknown_channels_are_set_aside_not_guessed(tmp_path):
    # a BioSemi-like file: EEG electrodes beside external channels that are no electrode we know
    path, x = _edf(tmp_path, names=("Fp1", "EXG1", "Cz", "HL"))
    rec = read(path)
    assert rec.electrodes == ["Fp1", "Cz"] and rec.set_aside == {"EXG1": "unknown", "HL": "unknown"}
    assert np.allclose(rec.signals, x[[0, 2]], atol=0.05)  # the electrodes' own signals, in order
    with pytest.raises(EEGInputError, match="unknown electrode name.*'EXG1', 'HL'.*without strict"):
        read(path, strict=True)
    assert read(path, rename={"EXG1": "C3", "HL": "C4"}).electrodes == ["Fp1", "C3", "Cz", "C4"]
    # a cap of numbered channels: nothing known is left, and the line stays short
    many = tmp_path / "numbered.npz"
    np.savez(many, data=np.random.default_rng(0).standard_normal((40, 500)), ch_names=np.array([f"ch{i}" for i in range(1, 41)]),
             sfreq=100.0)
    with pytest.raises(EEGInputError, match=r"no known EEG electrode among 40 channel\(s\).*ch8 \(unknown\) and 32 more"):
        read(many)


def _patched(path, at, value: bytes):
    data = bytearray(path.read_bytes())
    data[at:at + len(value)] = value
    path.write_bytes(bytes(data))


def test_edf_header_faults_are_named(tmp_path, capsys):
    # 4 signals + the annotation signal: the per-signal fields start at byte 256
    path, _ = _edf(tmp_path, sfreq=250.0, name="dur0.edf")
    _patched(path, 244, b"0       ")
    with pytest.raises(EEGInputError, match="data-record duration is '0' s"):
        read(path)
    assert main(["inspect", str(path)]) == 2 and "data-record duration" in capsys.readouterr().err
    path, _ = _edf(tmp_path, name="spr0.edf")
    n = int(path.read_bytes()[252:256])
    _patched(path, 256 + n * 216 + 8, b"0       ")  # the second signal's samples per record
    with pytest.raises(EEGInputError, match="gives 'Fp2' no samples per data record"):
        read(path)
    path, _ = _edf(tmp_path, name="dup.edf")
    _patched(path, 256, b"EEG Fp1         EEG Fp1         ")
    with pytest.raises(EEGInputError, match="'EEG Fp1' appear more than once"):
        read(path)
    path, _ = _edf(tmp_path, names=("ECG", "EOG", "Cz", "C4"), name="dup-ecg.edf")
    _patched(path, 256, b"ECG             ECG             ")
    assert read(path).set_aside == {"ECG": "duplicate name"}  # two non-EEG channels of one name: neither used
    path, _ = _edf(tmp_path, name="cut.edf")
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(EEGInputError, match="truncated: the header describes 5 signals but ends early"):
        read(path)


def test_unreadable_file_says_why(tmp_path, monkeypatch):
    import builtins

    import eegpt.mne_io as mne_io

    path, _ = _edf(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(mne_io, "open", denied, raising=False)  # root reads any file: simulate it
    with pytest.raises(EEGInputError, match=r"cannot be opened \(Permission denied\); check the file's permissions"):
        read(path)
    monkeypatch.setattr(mne_io, "open", builtins.open, raising=False)
    assert read(path).electrodes == ["Fp1", "Fp2", "C3", "C4"]


def test_nan_and_flat_channels(tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 1000)) * 10
    x[1, 10:20] = np.nan
    x[2] = 5.0
    np.savez(tmp_path / "bad.npz", data=x, ch_names=np.array(["C3", "Cz", "C4"]), sfreq=100.0)
    with pytest.raises(EEGInputError, match=r"'Cz' is non-finite \(10 NaN/Inf samples\); 'C4' is flat"):
        read(tmp_path / "bad.npz")
    rec = read(tmp_path / "bad.npz", drop_bad=True)
    assert rec.electrodes == ["C3"] and rec.set_aside == {"Cz": "non-finite", "C4": "flat"}


def test_duplicate_electrodes_and_no_eeg(tmp_path):
    x = np.zeros((2, 100)) + np.arange(100)
    np.savez(tmp_path / "dup.npz", data=x, ch_names=np.array(["T3", "T7"]), sfreq=100.0)
    with pytest.raises(EEGInputError, match="both electrode T7"):
        read(tmp_path / "dup.npz")
    np.savez(tmp_path / "ecg.npz", data=x, ch_names=np.array(["ECG", "EOG"]), sfreq=100.0)
    with pytest.raises(EEGInputError, match="no known EEG electrode among 2 channel"):
        read(tmp_path / "ecg.npz")


def test_a_cap_over_the_upper_head_is_registered_onto_the_template_and_read_onto_a_montage(tmp_path):
    """A 19-channel cap at the 10-20 sites, numbered, in its own scale and origin: every channel is
    read as its own site (the cap scaled and shifted onto the template; a sphere fitted to the upper
    head alone tilts them towards the vertex). Read onto a montage (what predict's place='montage'
    does), its channels keep their samples and an electrode it lacks is interpolated from a smooth
    field; a montage the cap cannot give is refused in one line."""
    from eegpt.electrodes import _scalp, position

    sites = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4",
             "P8", "O1", "O2"]
    numbered = [f"E{i + 1}" for i in range(len(sites))]
    field = np.random.default_rng(3).standard_normal((3, 500)) * 10  # µV along the head's x, y, z
    truth = np.array([_scalp()[e] for e in sites]) @ field
    raw = mne.io.RawArray(truth * 1e-6, mne.create_info(numbered, 250.0, "eeg"), verbose=False)
    raw.set_montage(mne.channels.make_dig_montage(
        {n: 1.1 * position(e) + [0.004, -0.01, 0.03] for n, e in zip(numbered, sites)}, coord_frame="head"))
    rec = read(raw)
    assert rec.electrodes == sites and max(rec.meta["by_position"].values()) < 0.5
    # by name, Cz left out: read onto a montage with Cz, the others as recorded, Cz from its neighbours
    named = mne.io.RawArray(np.delete(truth, 9, 0) * 1e-6,
                            mne.create_info([e for e in sites if e != "Cz"], 250.0, "eeg"), verbose=False)
    onto = read(named, place="splines", onto=["Cz", "C3", "Pz", "Fp1", "Iz"])  # Iz: beyond the cap
    assert onto.electrodes == ["Cz", "C3", "Pz", "Fp1"] and "onto 4 sites of the montage" in onto.meta["splines"]
    np.testing.assert_allclose(onto.signals[1:], truth[[8, 14, 0]], atol=1e-3)
    assert np.linalg.norm(onto.signals[0] - truth[9]) < 0.1 * np.linalg.norm(truth[9])
    with pytest.raises(EEGInputError, match="none of the electrodes to interpolate onto"):
        read(named, place="splines", onto=["Fpz-Cz", "Pz-Oz"])  # bipolar derivations: no one site
    with pytest.raises(EEGInputError, match="read with place='splines'"):
        read(named, onto=["Cz"])
