import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from eegpt.cards import card_names, load_card, split_of
from eegpt.errors import EEGInputError
from eegpt.store import Store, prepare

from conftest import shared


def test_every_card_loads_and_names_its_split():
    names = card_names()
    for required in ("eegmat", "eegmmidb", "sleep-edf", "hmc", "eegnb-n170", "eegnb-p300", "bciciv-1",
                     "bciciv-2a", "mibci", "stew", "deap", "deap-bdf", "faced", "seed-iv", "seed-v", "things-eeg", "synthetic-mw"):
        assert required in names
    for n in names:
        card = load_card(n)
        assert card.classes and card.source and card.licence and card.split
        assert card.prepare or card.why_not


def test_standard_splits():
    eegmat = split_of(load_card("eegmat"), [f"{i:02d}" for i in range(36)])
    assert [eegmat[s] for s in ("00", "25", "26", "30", "31", "35")] == ["train", "train", "val", "val", "test", "test"]
    mmidb = split_of(load_card("eegmmidb"), ["001", "070", "071", "089", "090", "109"])
    assert list(mmidb.values()) == ["train", "train", "val", "val", "test", "test"]
    synth = split_of(load_card("synthetic-mi"), [f"{i:03d}" for i in range(1, 11)])
    assert list(synth.values()).count("test") == 2 and synth["010"] == "test"


def test_store_index_and_windows(stores):
    mw = stores["mw"]
    assert mw.task == "MW" and mw.classes == ["rest", "arithmetic"]
    assert mw.index["window_samples"] == 4 * 256 and len(mw) == mw.index["n_samples"] > 0
    s = mw[0]
    assert s.x.shape == (19, 1024) and s.x.dtype == np.float32 and s.subject == "001"
    assert set(mw.index["splits"].values()) == {"train", "val", "test"}
    ss = stores["ss"]
    assert ss[0].x.shape == (2, 30 * 256) and ss.index["electrodes"] == ["Fpz-Cz", "Pz-Oz"]


def test_eegmat_store_from_real_files(tmp_path):
    src = shared("MW", "eegmat")
    store = prepare("eegmat", src, tmp_path / "eegmat", workers=2, progress=False)
    assert store.index["subjects"][0] == "00" and len(store.index["subjects"]) == 31
    assert set(store.index["counts"]) == {"train", "val"}  # 31-35 are not in ../shared/data
    # 182-s rest and 62-s task files in 4-s windows (Subject04_1 is 170 s)
    assert store.index["counts"]["train"]["arithmetic"] == 26 * 15


def test_rerun_completes_an_interrupted_prepare(corpus, tmp_path):
    out = tmp_path / "cm"
    first = prepare("synthetic-cm", corpus, out, workers=1, progress=False)
    before = [first[i].x for i in range(len(first))]
    shards = sorted((out / "shards").glob("*.json"))
    shards[1].unlink()  # as if killed after writing the shard but before marking it complete
    (out / "shards" / ".tmp-123-00009-x.arrayrecord").write_bytes(b"half")  # a killed writer's leftovers
    again = prepare("synthetic-cm", corpus, out, workers=1, progress=False)
    assert len(again) == len(before)
    assert all(np.array_equal(a, again[i].x) for i, a in enumerate(before))
    assert not list((out / "shards").glob(".tmp-*"))


def test_sigkill_leaves_no_half_shard_and_rerun_finishes(corpus, tmp_path):
    out = tmp_path / "mi"
    code = ("import sys; from eegpt.store import prepare; "
            f"prepare('synthetic-mi', {str(corpus)!r}, {str(out)!r}, workers=1, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while time.time() < deadline and not list((out / "shards").glob("*.json")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "index.json").exists()
    for shard in (out / "shards").glob("*.arrayrecord"):
        if not shard.name.startswith(".tmp-"):
            # every shard under its final name is complete: readable to its last record
            from array_record.python.array_record_module import ArrayRecordReader

            reader = ArrayRecordReader(str(shard))
            assert reader.num_records() > 0
            reader.close()
    store = prepare("synthetic-mi", corpus, out, workers=1, progress=False)
    assert store.index["n_samples"] == sum(store.index["counts"]["train"].values()) + sum(
        store.index["counts"]["val"].values()) + sum(store.index["counts"]["test"].values())


def test_bad_recordings_are_listed_and_can_be_skipped(corpus, tmp_path):
    src = tmp_path / "src" / "CM"
    src.mkdir(parents=True)
    for p in (corpus / "CM").glob("sub-00[12]*"):
        (src / p.name).write_bytes(p.read_bytes())
    bad = src / "sub-002_task-CM_eeg.edf"
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(EEGInputError, match=r"1 of 2 recordings .*sub-002_task-CM_eeg.edf: truncated"):
        prepare("synthetic-cm", src.parent, tmp_path / "st", workers=1, progress=False)
    (src / "sub-003_old_eeg.edf").mkdir()  # a folder the card's pattern matches: said, not silently passed
    store = prepare("synthetic-cm", src.parent, tmp_path / "st", workers=1, skip_bad=True, progress=False)
    assert store.index["subjects"] == ["001"] and "CM/sub-002_task-CM_eeg.edf" in store.index["skipped"]
    assert "a folder whose name matches" in store.index["skipped"]["CM/sub-003_old_eeg.edf"]


def test_prepare_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(EEGInputError, match="cannot be prepared yet"):
        prepare("faced", tmp_path, tmp_path / "x")
    with pytest.raises(EEGInputError, match="no such dataset card"):
        prepare("nope", tmp_path, tmp_path / "x")
    with pytest.raises(EEGInputError, match="no files matching"):
        prepare("eegmat", tmp_path, tmp_path / "x")
    with pytest.raises(EEGInputError, match="not a prepared store"):
        Store(tmp_path)


def test_window_longer_than_recording(corpus, tmp_path):
    from eegpt.cards import windows
    from eegpt.preprocess import preprocess
    from eegpt.recording import read

    rec = preprocess(read(corpus / "CM" / "sub-001_task-CM_eeg.edf"))
    short = type(rec)(**{**rec.__dict__, "signals": rec.signals[:, :200]})
    with pytest.raises(EEGInputError, match="shorter than one 1-s window"):
        windows(load_card("synthetic-cm"), short, corpus / "CM" / "sub-001_task-CM_eeg.edf")


def test_a_continuous_store_tiles_whole_recordings_unlabelled(corpus, stores, tmp_path):
    """prepare(continuous=True): every recording whole, labelled or not, in the card's windows."""
    from eegpt.errors import TrainingError
    from eegpt.finetune import FinetuneConfig, finetune
    from eegpt.store import prepare

    cont = prepare("synthetic-mw", corpus, tmp_path / "cont", workers=1, progress=False, continuous=True)
    labelled = stores["mw"]
    assert cont.index["continuous"] and cont.index["fingerprint"] != labelled.index["fingerprint"]
    assert (cont.labels == -1).all()
    # each recording tiled from its first sample by the card's windows and stride, to its end
    win, stride = cont.index["window_samples"], cont.index["stride_samples"]
    for shard in cont.index["shards"]:
        samples = int(round(shard["duration_s"] * cont.index["sfreq"]))
        assert shard["n"] == (samples - win) // stride + 1
    assert cont.index["n_samples"] > labelled.index["n_samples"]  # the unlabelled stretches are there too
    assert cont.index["counts"]["train"] == {"rest": 0, "arithmetic": 0,
                                             "unlabelled": int((cont.split_of == "train").sum())}
    with pytest.raises(TrainingError, match="continuous store"):
        finetune(tmp_path, [cont], tmp_path / "ft", FinetuneConfig(steps=1), progress=False)
