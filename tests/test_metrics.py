import numpy as np
import pytest

from eegpt.metrics import (answer_threshold, classification, coverage_curve, expected_calibration_error, fit_temperature, mean_std,
                           plot_confusion)


def test_perfect_and_chance_predictions():
    y = np.array([0, 0, 1, 1, 2, 2])
    perfect = np.eye(3)[y] * 0.9 + 0.1 / 3
    m = classification(y, perfect)
    assert m["balanced_accuracy"] == 1.0 and m["cohen_kappa"] == 1.0 and m["weighted_f1"] == 1.0
    assert m["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]] and "auroc" not in m
    constant = np.tile([0.5, 0.3, 0.2], (6, 1))
    m = classification(y, constant)
    assert m["balanced_accuracy"] == pytest.approx(1 / 3) and m["cohen_kappa"] == 0.0


def test_two_classes_add_auroc_and_auc_pr():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.9])  # one pair ranked wrong out of four
    m = classification(y, np.stack([1 - p1, p1], 1))
    # average precision by hand: ranked 0.9 (positive), 0.6, 0.4 (positive), 0.1; the positives are
    # reached at precision 1/1 and 2/3, each adding half the recall
    assert m["auroc"] == pytest.approx(0.75) and m["auc_pr"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_expected_calibration_error():
    y = np.array([0, 0, 0, 0])
    # confidence 0.8 on four predictions of class 0, all right: |1.0 - 0.8| = 0.2
    assert expected_calibration_error(y, np.tile([0.8, 0.2], (4, 1))) == pytest.approx(0.2)
    # two bins: 0.95 confident and right, 0.65 confident and wrong half the time
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.65, 0.35], [0.65, 0.35]])
    assert expected_calibration_error(np.array([0, 0, 0, 1]), probs) == pytest.approx(0.5 * 0.05 + 0.5 * 0.15)


def test_mean_std_over_runs_and_confusion_plot(tmp_path):
    runs = [{"balanced_accuracy": 0.6, "ece": 0.1}, {"balanced_accuracy": 0.8, "ece": 0.3}]
    out = mean_std(runs)
    assert out["balanced_accuracy"]["mean"] == pytest.approx(0.7) and out["balanced_accuracy"]["std"] == pytest.approx(0.1)
    assert "auroc" not in out
    plot_confusion([[3, 1], [0, 4]], ["a", "b"], tmp_path / "c.png", "t")
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_temperature_scaling_calibrates_held_out_windows():
    from scipy.special import softmax

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 4000)
    logits = rng.standard_normal((4000, 3))
    logits[np.arange(4000), y] += 1.5
    logits *= 4.0  # an overconfident model
    t = fit_temperature(logits[:2000], y[:2000])  # fitted on "validation", judged on the other half
    assert t > 1.5
    before = expected_calibration_error(y[2000:], softmax(logits[2000:], 1))
    after = expected_calibration_error(y[2000:], softmax(logits[2000:] / t, 1))
    assert after < before / 3 and after < 0.04
    assert (softmax(logits / t, 1).argmax(1) == logits.argmax(1)).all()  # the ranking is unchanged
    coverage, accuracy = coverage_curve(y[2000:], softmax(logits[2000:] / t, 1))
    assert coverage[-1] == 1.0 and accuracy[len(accuracy) // 5] > accuracy[-1] + 0.1  # abstaining buys accuracy


def test_the_answering_threshold_is_the_widest_coverage_that_stays_accurate():
    # confidences 0.95 .. 0.5; the 6 most confident are right, then every other one is wrong
    conf = np.linspace(0.95, 0.5, 10)
    probs = np.stack([conf, 1 - conf], 1)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 0, 1, 1])
    t = answer_threshold(y, probs, target=0.85)
    answered = conf >= t
    assert (probs[answered].argmax(1) == y[answered]).mean() >= 0.85  # what it promises, on these windows
    assert answered.sum() == 8  # 7 of 8 right; 9 would be 7 of 9 (0.78)
    assert answer_threshold(y[:6], probs[:6], target=0.9) == 0.0  # all right: answer everything
    assert answer_threshold(1 - y[:6], probs[:6], target=0.9) == 1.0  # never that accurate: never answer
