"""The linear start's view search: "combinations+ete" reads the ETE only where it beats, on the
validation subjects, the best combination of the classical views."""
import numpy as np
import pytest

from eegpt.readout import linear_readout
from teg.model import VOCAB_SIZE


class _Store:
    """What the search reads of a store: its splits, labels, subjects and classes."""

    def __init__(self, labels, subjects, split):
        self.labels, self.subject_of, self.split, self.classes = labels, subjects, split, ["a", "b"]

    def indices(self, part):
        return np.flatnonzero(self.split == part)


def _case(informative: str, seed: int = 0):
    """Windows of 3 electrodes whose views are ete (4 columns), bands (2) and erp (2); only the
    ``informative`` view carries the class, the others are noise."""
    rng = np.random.default_rng(seed)
    n = 240
    labels = rng.integers(0, 2, n)
    subjects = np.repeat(np.arange(8), n // 8)
    split = np.where(subjects < 6, "train", "val")
    widths = {"ete": 4, "bands": 2, "erp": 2}
    parts = []
    for view, w in widths.items():
        x = rng.normal(size=(n, 3, w))
        if view == informative:
            x[..., 0] += 1.5 * (2 * labels[:, None] - 1)
        parts.append(x)
    cache = {"h": {"features": np.concatenate(parts, -1).astype(np.float32),
                   "electrodes": np.tile(np.array([10, 20, 30]), (n, 1)), "mask": np.ones((n, 3), bool)}}
    width = sum(widths.values())
    norm = {"mean": np.zeros((VOCAB_SIZE, width)), "std": np.ones((VOCAB_SIZE, width))}
    teg = {"readout": {"h": None}, "heads": {"h": {"out": {"kernel": np.zeros((4, 2)), "bias": np.zeros(2)}}}}
    store = _Store(labels, subjects, split)
    return teg, store, cache, norm, list(widths.items())


@pytest.mark.parametrize("informative, expected", [("ete", {"ete"}), ("bands", {"bands"})])
def test_the_ete_is_read_only_where_it_beats_the_classical_start(informative, expected):
    teg, store, cache, norm, views = _case(informative)
    _, chosen = linear_readout(teg, ["h"], [store], cache, norm, [store.indices("train")], views,
                               search="combinations+ete")
    picked = set(chosen["h"]["view"].split("+"))
    assert chosen["h"]["selected_on"] == "val"
    if informative == "ete":
        # the classical views carry nothing, the ETE everything: it is added to the best classical start
        assert "ete" in picked and len(picked) == 2
    else:
        # the ETE is noise: it cannot beat the classical start on validation, so it is not read
        assert picked == expected
    weights = np.asarray(teg["readout"]["h"])  # [vocabulary, 8 columns, 2 classes]
    assert np.any(weights[:, :4]) == ("ete" in picked)
