"""The label-efficiency experiment's subject lever, checked against what it promises."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def le():
    spec = importlib.util.spec_from_file_location("label_efficiency", ROOT / "experiments" / "label_efficiency.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["label_efficiency"] = module
    spec.loader.exec_module(module)
    return module


def test_per_subject_standardises_each_subject_alone(le):
    rng = np.random.default_rng(0)
    subjects = np.repeat(["a", "b", "c"], 20)
    # each subject its own offset and scale: what the lever removes
    x = rng.normal(size=(60, 4)) * np.repeat([1.0, 5.0, 0.2], 20)[:, None] + np.repeat([0.0, 10.0, -3.0], 20)[:, None]
    z = le.per_subject(x, subjects)
    for s in "abc":
        rows = subjects == s
        np.testing.assert_allclose(z[rows].mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(z[rows].std(0), 1, atol=1e-6)
        # within a subject the order of windows is kept (a monotone map per column)
        np.testing.assert_array_equal(np.argsort(z[rows], 0), np.argsort(x[rows], 0))


def test_recentring_puts_each_subjects_mean_at_the_identity(le):
    from pyriemann.estimation import Covariances
    from pyriemann.geometry.mean import mean_riemann
    from pyriemann.geometry.tangentspace import untangent_space

    rng = np.random.default_rng(1)
    subjects = np.repeat(["a", "b"], 30)
    mixing = {"a": rng.normal(size=(4, 4)), "b": 3 * rng.normal(size=(4, 4))}  # each subject its own head
    x = np.stack([mixing[s] @ rng.normal(size=(4, 200)) for s in subjects])
    t = le.recentred_tangent_space(x, subjects)
    assert t.shape == (60, 10)  # the upper triangle of a 4 x 4 matrix
    covs = untangent_space(t, np.eye(4), metric="riemann")
    for s in "ab":
        np.testing.assert_allclose(mean_riemann(covs[subjects == s]), np.eye(4), atol=1e-5)
    # without re-centring the two subjects' covariances sit far apart
    raw = Covariances(estimator="oas").transform(x)
    assert np.linalg.norm(mean_riemann(raw[subjects == "a"]) - mean_riemann(raw[subjects == "b"])) > 1
