"""The foundation ETE: its data never holds a benchmark's held-out subject, it is exported in
float16 and loads as any ETE, and the package ships it."""

import json

import numpy as np
import pytest

from eegpt.errors import EEGInputError, TrainingError
from eegpt.foundation import PARAMS_FILE, WEIGHTS, pretraining_split, resolve

from conftest import shared


class _Store:
    def __init__(self, card, subjects):
        self.name, self.path = card, f"stores/{card}"
        self.subject_of = np.asarray(subjects)


def test_the_recipe_never_reads_a_held_out_subject_and_scores_mse_on_one_kept_apart():
    subjects = [f"{k:02d}" for k in range(31) for _ in range(2)]  # EEGMAT as shared: 00-30, two recordings
    part = dict(zip(subjects, pretraining_split(_Store("eegmat", subjects))))
    assert {s for s, p in part.items() if p == "unassigned"} == {"26", "27", "28", "29", "30"}
    assert [s for s, p in part.items() if p == "val"] == ["25"]
    assert {s for s, p in part.items() if p == "train"} == {f"{k:02d}" for k in range(25)}
    mmidb = pretraining_split(_Store("eegmmidb", [f"{k:03d}" for k in range(1, 12)]))
    assert mmidb.tolist() == ["train"] * 7 + ["val"] + ["unassigned"] * 3  # S009-S011 held out
    with pytest.raises(TrainingError, match="every subject"):
        pretraining_split(_Store("eegnb-n170", ["1", "2", "3"]))


def test_resolve_names_the_shipped_encoder(tmp_path):
    assert resolve(tmp_path) == tmp_path
    if (WEIGHTS / PARAMS_FILE).exists():
        assert resolve("foundation") == WEIGHTS
    else:
        with pytest.raises(EEGInputError, match="not in this installation"):
            resolve("foundation")


def test_the_package_ships_the_foundation_encoder_with_its_card():
    """The encoder a pip install fine-tunes from: float16, at most 8 MB, and its model card says
    what it read — no subject any benchmark holds out."""
    from eegpt.finetune import load_ete
    from eegpt.protocols import held_out_seen

    assert (WEIGHTS / PARAMS_FILE).stat().st_size <= 8 * 2 ** 20
    card = json.loads((WEIGHTS / "card.json").read_text())
    metrics = json.loads((WEIGHTS / "metrics.json").read_text())
    for name, subjects in metrics["subjects_seen"].items():
        assert held_out_seen(name, subjects) == [], name
    assert card["steps"] == metrics["step"] and card["held_out_mse"]["val_mse"] == metrics["val_mse"]
    assert "never read" in (WEIGHTS / "MODEL_CARD.md").read_text()
    _, params, cfg = load_ete("foundation")
    with np.load(WEIGHTS / PARAMS_FILE) as z:
        assert all(z[k].dtype == np.float16 for k in z.files)
    assert cfg.preset == card["preset"] and all(np.isfinite(np.asarray(x)).all() for x in __import__("jax").tree.leaves(params))


@pytest.mark.slow  # prepares EEGMAT and eegmmidb whole: about a minute on 2 cores
def test_the_recipe_end_to_end_on_the_shared_data(tmp_path, capsys):
    import jax

    from eegpt.cli import main
    from eegpt.finetune import load_ete

    data = shared()
    assert main(["pretrain", "--recipe", "foundation", "--source", str(data), "--workdir", str(tmp_path / "w"),
                 "--preset", "tiny", "--steps", "3", "--ckpt-every", "3", "--eval-batches", "2", "--quiet",
                 "--export", str(tmp_path / "exported")]) == 0
    card = json.loads((tmp_path / "w" / "card.json").read_text())
    assert set(card["data"]) == {"eegmat", "eegmmidb"}
    assert card["data"]["eegmat"]["subjects"]["unassigned"] == ["26", "27", "28", "29", "30"]
    assert card["data"]["eegmmidb"]["recordings_trained_on"] == 30  # S001's runs 3-14, S002-S007's imagery runs
    _, trained, _ = load_ete(tmp_path / "w")
    _, exported, _ = load_ete(tmp_path / "exported")
    for a, b in zip(jax.tree.leaves(trained), jax.tree.leaves(exported)):
        np.testing.assert_array_equal(np.asarray(a, np.float16).astype(np.float32), np.asarray(b))
    assert main(["pretrain", "--recipe", "foundation", "--data", "x", "--source", str(data),
                 "--workdir", str(tmp_path / "v")]) == 2
