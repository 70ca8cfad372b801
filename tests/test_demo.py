import json

from eegpt.demo import DemoPlan, demo


def test_a_miniature_demo_writes_the_report(tmp_path):
    plan = DemoPlan(subjects=3, preset="tiny", pretrain_steps=3, finetune_steps=4, eval_every=2)
    report = demo(tmp_path, plan=plan, progress=False)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["tasks"].keys() == {"ER", "MI", "MW", "SS", "CM"}
    for task, n in (("ER", 4), ("MI", 4), ("MW", 2), ("SS", 5), ("CM", 2)):
        r = saved["tasks"][task]
        assert r["n_classes"] == n and 0.0 <= r["balanced_accuracy"] <= 1.0
        assert 0.0 <= r["baseline_balanced_accuracy"] <= 1.0 and r["test_windows"] > 0
    assert (tmp_path / "tsne.png").exists() and (tmp_path / "embeddings.npz").exists()
    assert report["stage_seconds"].keys() == {"corpus", "prepare", "pretrain", "finetune", "evaluate", "tsne"}
    again = demo(tmp_path, plan=plan, progress=False)  # every stage resumes: nothing is trained twice
    assert json.loads((tmp_path / "finetune" / "finetune.json").read_text())["resumed_from"] == 4
    assert json.loads((tmp_path / "ete" / "metrics.json").read_text())["resumed_from"] == 3
    assert again["tasks"]["SS"]["balanced_accuracy"] == report["tasks"]["SS"]["balanced_accuracy"]
