import json

import pytest

from fhir.resources.R4B.bundle import Bundle

from eegpt.copilot import knowledge as kb
from eegpt.cli import main
from eegpt.demo import DemoPlan, demo


PLAN = DemoPlan(subjects=3, preset="tiny", pretrain_steps=3, finetune_steps=4, eval_every=2, copilot_steps=3,
                readout_search="each")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    return workdir, demo(workdir, plan=PLAN, progress=False)


def test_a_miniature_demo_writes_the_report(demo_run):
    tmp_path, report = demo_run
    plan = PLAN
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["tasks"].keys() == {"ER", "MI", "MW", "SS", "CM"}
    from sklearn.metrics import balanced_accuracy_score

    from eegpt.demo import BASELINES
    from eegpt.model import load
    from eegpt.store import Store

    model = load(tmp_path / "model")  # the report's scores are the saved model's, recomputed here
    assert not model.familiar  # one training subject per task: too few for the out-of-distribution check
    for task, n in (("ER", 4), ("MI", 4), ("MW", 2), ("SS", 5), ("CM", 2)):
        r = saved["tasks"][task]
        run = model.run(Store(tmp_path / "stores" / task.lower()), "test")
        assert r["n_classes"] == n and r["test_windows"] == len(run["labels"])
        assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(run["labels"], run["probs"].argmax(1)))
        assert set(r["baselines"]) == set(BASELINES[task]) and r["best_baseline"] in BASELINES[task]
        assert r["baseline_balanced_accuracy"] == max(b["balanced_accuracy"] for b in r["baselines"].values())
    assert (tmp_path / "tsne.png").exists() and (tmp_path / "embeddings.npz").exists()
    assert report["stage_seconds"].keys() == {"corpus and stores", "pretrain", "finetune", "evaluate", "tsne", "copilot"}
    # the demo ends with a copilot answer and an EMR for a held-out recording
    c = saved["copilot"]
    assert isinstance(c["fallback"], bool) and c["out_of_distribution"] is False  # the guard's flag is reported
    label = max(c["probs"], key=c["probs"].get)
    assert kb.faithfulness(c["answer"], "ER", label, c["probs"]) ["names_prediction"]
    assert "## Diagnosis" in (tmp_path / "emr.md").read_text()
    Bundle.model_validate(json.loads((tmp_path / "emr.json").read_text()))
    again = demo(tmp_path, plan=plan, progress=False)  # every stage resumes: nothing is trained twice
    assert json.loads((tmp_path / "finetune" / "finetune.json").read_text())["resumed_from"] == 4
    assert json.loads((tmp_path / "ete" / "metrics.json").read_text())["resumed_from"] == 3
    assert again["tasks"]["SS"]["balanced_accuracy"] == report["tasks"]["SS"]["balanced_accuracy"]


def test_copilot_command_answers_for_a_file_and_refuses_bad_input(demo_run, tmp_path, capsys):
    model_dir, report = demo_run
    edf = report["copilot"]["recording"]
    out = tmp_path / "record.json"
    assert main(["copilot", edf, "--model", str(model_dir), "--age", "61", "--sex", "M", "--json",
                 "--emr-out", str(out)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["task"] == "ER" and r["label"] == max(r["probs"], key=r["probs"].get)
    assert kb.faithfulness(r["answer"], "ER", r["label"], r["probs"])["names_prediction"]
    bundle = json.loads(out.read_text())
    Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 1 and "DiagnosticReport" in kinds and "Observation" in kinds
    for argv, says in (([str(tmp_path / "missing.edf"), "--model", str(model_dir)], "missing.edf"),
                       ([edf, "--model", str(tmp_path / "nowhere")], "nowhere"),
                       ([edf, "--model", str(model_dir), "--emr-out", str(tmp_path / "x.txt")], "x.txt")):
        assert main(["copilot", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.slow
def test_a_recording_unlike_the_training_data_gets_no_reading(tmp_path, capsys):
    """A synthetic-data model, asked about a real EEGMAT recording, says it is out of distribution
    instead of answering; a held-out synthetic recording of the same task gets its reading."""
    from conftest import shared
    from eegpt.copilot import Copilot, emr
    from eegpt.model import load
    from eegpt.predict import predict

    real = shared("MW", "eegmat", "Subject00_2.edf")
    demo(tmp_path, plan=DemoPlan(subjects=6, preset="tiny", pretrain_steps=20, finetune_steps=20, eval_every=10,
                                 copilot_steps=5, readout_search="each"), progress=False)
    model = load(tmp_path / "model")
    assert set(model.familiar) == {h.name for h in model.cfg.heads}  # 4 training subjects: every head checks
    held_out = sorted((tmp_path / "corpus" / "MW").glob("sub-006_*_eeg.edf"))[0]  # a test subject
    familiar, unlike = predict(model, held_out, task="MW"), predict(model, real, task="MW")
    assert familiar.unfamiliar < 0.1 and not familiar.out_of_distribution
    assert unlike.unfamiliar > 0.9 and unlike.to_dict()["out_of_distribution"]
    asked = Copilot(tmp_path).ask(real, task="MW", question="Is the patient under mental workload?")
    assert asked["out_of_distribution"] and "unlike the data the model was trained on" in asked["answer"]
    assert not any(kb.classes_of("MW")[c].name in asked["answer"] for c in ("rest", "arithmetic"))
    assert "not determined" in emr.markdown(asked["record"])
    assert main(["predict", str(real), "--model", str(tmp_path), "--task", "MW"]) == 0
    assert "unlike the data the model was trained on" in capsys.readouterr().out
