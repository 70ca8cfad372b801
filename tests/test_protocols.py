"""The leakage registry: no pretraining reads a subject a benchmark holds out, and a reused ETE that
saw a protocol's validation or test subjects is refused."""

import numpy as np
import pytest

from eegpt.errors import EEGInputError, TrainingError
from eegpt.protocols import HELD_OUT, check_ete_for, check_pretraining, held_out_seen


class _Store:
    """What the check reads of a store: its card, path, windows' subjects and splits."""
    def __init__(self, card, subjects, split="train"):
        self.name, self.path = card, f"stores/{card}"
        self.subject_of = np.asarray(subjects)
        self.split_of = np.full(len(subjects), split) if isinstance(split, str) else np.asarray(split)

    def indices(self, split):
        return np.flatnonzero(self.split_of == split)


def test_the_registry_holds_each_protocols_validation_and_test_subjects():
    assert HELD_OUT["eegmat"] == set(range(26, 36))
    assert {9, 11, 12, 23, 71, 109} <= HELD_OUT["eegmmidb"] and not {1, 8, 24, 70} & HELD_OUT["eegmmidb"]
    assert held_out_seen("eegmat", ["00", "25", "26", "31"]) == ["26", "31"]
    assert held_out_seen("eegnb-n170", ["1", "2"]) == ["1", "2"]  # left out in turn: every subject is held out
    assert held_out_seen("synthetic-mw", ["026"]) == []


def test_pretraining_on_a_held_out_subject_is_refused():
    ok = _Store("eegmat", ["00", "00", "25"])
    assert check_pretraining([ok]) == {"eegmat": ["00", "25"]}
    # an EEGMAT store prepared by its card: 26-30 are validation windows, never read for pretraining
    assert check_pretraining([_Store("eegmat", ["00", "27"], ["train", "val"])]) == {"eegmat": ["00"]}
    leaky = _Store("eegmmidb", ["001", "008", "010"])  # the card puts S001-S070 in train; S010 is held out
    with pytest.raises(TrainingError, match=r"stores/eegmmidb: its training windows hold subjects 010 that the "
                                            r"eegmmidb benchmark holds out"):
        check_pretraining([ok, leaky])
    assert check_pretraining([leaky], allow_held_out=True)["eegmmidb"] == ["001", "008", "010"]


def test_pretrain_refuses_a_leaky_store_before_any_step(stores, tmp_path):
    from eegpt.train import PretrainConfig, pretrain

    mw = stores["mw"]
    as_eegmat = mw.with_splits(np.full(len(mw), "train"))
    as_eegmat.index = {**mw.index, "card": "eegmat"}  # its subjects numbered 000-002: none held out
    cfg = PretrainConfig(preset="tiny", steps=2, batch_size=8, seq_tokens=2, warmup=1, eval_batches=1, ckpt_every=2)
    held = as_eegmat.with_splits(np.full(len(mw), "train"))
    held.subject_of = np.where(mw.subject_of == mw.subject_of[0], "031", mw.subject_of)  # one subject becomes 31
    with pytest.raises(TrainingError, match="031"):
        pretrain(cfg, [held, mw], tmp_path / "a", progress=False, track=False)
    assert not (tmp_path / "a" / "checkpoints").exists()
    m = pretrain(cfg, [as_eegmat, mw], tmp_path / "b", progress=False, track=False)
    assert m["subjects_seen"]["eegmat"] == sorted({str(x) for x in mw.subject_of}) and not m["held_out_allowed"]


def test_a_reused_ete_that_saw_scored_subjects_is_refused():
    metrics = {"subjects_seen": {"eegmat": ["00", "01", "27"]}, "held_out_allowed": False}
    check_ete_for("eegmat", metrics, ["26", "31"])  # saw none of them
    with pytest.raises(EEGInputError, match="eegmat subjects 27"):
        check_ete_for("eegmat", metrics, ["26", "27"])
    with pytest.raises(EEGInputError, match="--allow-held-out"):
        check_ete_for("eegmat", {"held_out_allowed": True}, [])
