"""experiments/ablations.py: every arm keeps the validation score its choice is made on, and the
arm chosen is the one validation prefers — never the one the test subjects prefer."""

import importlib.util
import json
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.fixture(scope="module")
def ablations():
    spec = importlib.util.spec_from_file_location("ablations", EXPERIMENTS / "ablations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seed(val: dict, test: dict) -> dict:
    return {"val": val, "test": test, "kept": {t: {"text": "-"} for t in val}}


def test_the_choice_reads_validation_not_test(ablations):
    # arm "b" is better on the test subjects, arm "a" on the validation subjects: "a" is chosen
    per_seed = [{"a": _seed({"ER": 0.8, "MI": 0.7}, {"ER": 0.5, "MI": 0.5}),
                 "b": _seed({"ER": 0.6, "MI": 0.7}, {"ER": 0.9, "MI": 0.9})},
                {"a": _seed({"ER": 0.6, "MI": 0.7}, {"ER": 0.5, "MI": 0.6}),
                 "b": _seed({"ER": 0.6, "MI": 0.6}, {"ER": 0.9, "MI": 0.8})}]
    arms = ablations.summarise(per_seed)
    assert arms["a"]["val_mean_over_tasks"] == pytest.approx((0.75 + 0.65) / 2)
    assert arms["b"]["val_mean_over_tasks"] == pytest.approx((0.65 + 0.6) / 2)
    assert arms["b"]["mean_over_tasks"] == pytest.approx(0.875) and arms["a"]["tasks"]["MI"]["seeds"] == [0.5, 0.6]
    chosen = ablations.choose(arms)
    assert chosen["arm"] == "a" and "validation" in chosen["on"]
    # an ablation that trains nothing (cap-positions) chooses nothing
    assert ablations.choose(ablations.summarise([{"x": {"test": {"ER": 0.5}}}]))["arm"] is None


@pytest.mark.slow  # a development corpus, two arms fine-tuned: about two minutes on 2 cores
def test_an_ablations_json_holds_each_arms_validation_score_and_the_arm_it_chose(ablations, tmp_path):
    assert ablations.main(["gentle-graph", "--workdir", str(tmp_path), "--subjects", "3", "--pretrain-steps", "2",
                           "--finetune-steps", "4", "--seeds", "0"]) == 0
    result = json.loads((tmp_path / "gentle-graph.json").read_text())
    assert result["corpus_seed"] == ablations.DEV_CORPUS_SEED != 0  # not the demo's corpus
    assert json.loads((tmp_path / "corpus" / "corpus.json").read_text())["seed"] == ablations.DEV_CORPUS_SEED
    for arm, r in result["arms"].items():
        tuned = json.loads((tmp_path / "gentle-graph" / "seed0" / ("demo" if arm == "demo recipe" else "gentle")
                            / "finetune.json").read_text())
        at_best = next(h for h in tuned["history"] if h["step"] == tuned["best_step"])["val_balanced_accuracy"]
        # per task, the validation score of the step the run kept, as fine-tuning recorded it
        assert {t: v["seeds"][0] for t, v in r["val"].items()} == {
            t: at_best[f"synthetic-{t.lower()}"] for t in r["val"]}
        assert r["kept"][0]["ER"]["step"] == tuned["best_step"]
    best = max(result["arms"], key=lambda a: result["arms"][a]["val_mean_over_tasks"])
    assert result["chosen"]["arm"] == best
    assert (tmp_path / "gentle-graph.png").exists()


def test_a_tie_on_validation_is_reported(ablations):
    same = _seed({"ER": 0.7}, {"ER": 0.6})
    chosen = ablations.choose(ablations.summarise([{"first": same, "second": same}]))
    assert chosen["arm"] == "first" and chosen["tied"] == ["second"]
