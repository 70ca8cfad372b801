import json

import numpy as np
import pytest

from eegpt.benchmark import benchmark, folds
from eegpt.cli import main
from eegpt.errors import EEGInputError

from conftest import shared


def test_eegmat_protocol_scores_on_val_subjects_when_31_35_are_absent(stores):
    s = stores["mw"]
    [(_, split, what)] = folds("eegmat", s)
    np.testing.assert_array_equal(split, s.split_of)  # the card's own split when a test part exists
    no_test = s.with_splits(np.where(s.split_of == "test", "unassigned", s.split_of))
    [(_, split, what)] = folds("eegmat", no_test)
    assert set(split) == {"train", "test", "unassigned"} and "absent" in what
    assert ((split == "test") == (s.split_of == "val")).all()


def test_leave_one_subject_out_scores_every_subject_once(stores):
    s = stores["cm"]
    got = folds("n170", s)
    assert len(got) == len(set(s.subject_of))
    tested = np.stack([split == "test" for _, split, _ in got])
    assert (tested.sum(0) == 1).all() and all((split != "val").all() for _, split, _ in got)


def test_eegmmidb_runs_protocol_end_to_end(tmp_path):
    source = shared("MI", "eegmmidb")
    r = benchmark("eegmmidb", source, tmp_path, preset="tiny", pretrain_steps=2, finetune_steps=2, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["split"].startswith("S001: train on runs 4 and 8")
    assert saved["test"]["n"] == saved["baseline"]["n"] == 15  # run 12: 15 imagined fist trials
    assert 0.0 <= r["test"]["balanced_accuracy"] <= 1.0 and 0.0 <= r["baseline"]["balanced_accuracy"] <= 1.0


def test_benchmark_refuses_unknown_names_and_empty_folders(tmp_path):
    with pytest.raises(EEGInputError, match="unknown benchmark"):
        benchmark("nope", tmp_path, tmp_path / "w")
    assert main(["benchmark", "eegmat", "--source", str(tmp_path), "--workdir", str(tmp_path / "w")]) == 2
