import json

import jax
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix

from eegpt.cli import main
from eegpt.embed import embed, tsne
from eegpt.evaluate import evaluate, kept_model
from eegpt.finetune import FinetuneConfig, finetune, load_ete
from eegpt.model import load
from eegpt.train import PretrainConfig, pretrain
from eegpt.errors import TrainingError


@pytest.fixture(scope="module")
def tiny_ete(stores, tmp_path_factory):
    out = tmp_path_factory.mktemp("ete")
    pretrain(PretrainConfig(preset="tiny", steps=4, batch_size=16, seq_tokens=2, warmup=1, eval_batches=1),
             [stores["mw"]], out, progress=False, track=False)
    return out


def _ece(labels, probs, bins: int = 10) -> float:
    """Expected calibration error written out: |accuracy - confidence| per confidence bin
    [k/10, (k+1)/10) (the last one closed), weighted by the bin's share of the windows."""
    conf, hit = probs.max(1), probs.argmax(1) == labels
    total = 0.0
    for k in range(bins):
        inside = (conf >= k / bins) & ((conf < (k + 1) / bins) | (k == bins - 1))
        if inside.any():
            total += inside.mean() * abs(hit[inside].mean() - conf[inside].mean())
    return total


def _leaves_equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.slow  # about a minute on 2 cores
def test_frozen_joint_finetuning_resumes_and_evaluates(stores, tiny_ete, tmp_path):
    parts = [stores["mw"], stores["cm"]]
    ft = FinetuneConfig(steps=4, eval_every=2, batch_size=8, warmup=1, patience=10)
    out = finetune(tiny_ete, parts, tmp_path / "ft", ft, progress=False, track=False)
    assert out["steps_run"] == 4 and [h["step"] for h in out["history"]] == [2, 4]
    assert set(out["history"][-1]["val_balanced_accuracy"]) == {"synthetic-mw", "synthetic-cm"}
    assert out["sampling_weights"]["synthetic-cm"] > 0 and out["selected_on"] == "val"
    features = {}
    again = finetune(tiny_ete, parts, tmp_path / "ft", FinetuneConfig(**{**ft.__dict__, "steps": 6}),
                     progress=False, track=False, features_out=features)
    assert again["resumed_from"] == 4 and [h["step"] for h in again["history"]] == [2, 4, 6]
    assert again["readout_start"] == out["readout_start"]  # kept from the run resumed, not searched again
    model = load(tmp_path / "ft")
    _, ete_params, _ = load_ete(tiny_ete)
    assert _leaves_equal(model.params["ete"], ete_params)  # frozen: the encoder is as pretrained
    # each head's temperature was fitted on its validation windows and travels with the model
    assert set(again["temperature"]) == {"synthetic-mw", "synthetic-cm"}
    assert all(model.cfg.head(n).temperature == again["temperature"][n] > 0 for n in again["temperature"])
    res = evaluate(tmp_path / "ft", parts, "test")
    for name, s in (("synthetic-mw", stores["mw"]), ("synthetic-cm", stores["cm"])):
        r = res[name]
        run = model.run(s, "test")
        truth = s.labels[s.indices("test")]  # from the store, not from the model's run
        assert r["n"] == len(truth) and np.array_equal(run["labels"], truth)
        assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, run["probs"].argmax(1)))
        assert {"cohen_kappa", "weighted_f1", "ece", "auroc", "auc_pr"} <= set(r)
        assert np.array_equal(r["confusion"], confusion_matrix(truth, run["probs"].argmax(1), labels=range(len(s.classes))))
        assert (tmp_path / "ft" / f"confusion-{name}-test.png").exists()
        assert (tmp_path / "ft" / f"coverage-{name}-test.png").exists() and r["temperature"] == again["temperature"][name]
        # the uncalibrated ECE, from softmax(logits) by hand
        raw = np.exp(run["logits"] - run["logits"].max(1, keepdims=True))
        raw /= raw.sum(1, keepdims=True)
        assert r["ece_uncalibrated"] == pytest.approx(_ece(truth, raw), abs=1e-6)
        assert np.allclose(run["probs"], jax.nn.softmax(run["logits"] / r["temperature"], -1), atol=1e-5)
    run = model.run(stores["cm"], "test")
    assert np.allclose(run["probs"].sum(1), 1.0, atol=1e-5) and run["pooled"].shape[0] == run["probs"].shape[0]
    # the features fine-tuning encoded once score exactly as encoding the windows again
    assert set(features) == {"synthetic-mw", "synthetic-cm"} and len(features["synthetic-cm"]["features"]) == len(stores["cm"])
    reused = model.run(stores["cm"], "test", cached=features["synthetic-cm"])
    assert np.allclose(reused["probs"], run["probs"], atol=1e-5) and np.allclose(reused["pooled"], run["pooled"], atol=1e-4)
    assert evaluate(tmp_path / "ft", parts, "test", plots=False, features=features)["synthetic-mw"]["balanced_accuracy"] \
        == res["synthetic-mw"]["balanced_accuracy"]


def test_trainable_ete_moves_the_encoder(stores, tiny_ete, tmp_path):
    ft = FinetuneConfig(steps=2, eval_every=2, batch_size=8, warmup=1, train_ete=True)
    finetune(tiny_ete, [stores["mw"]], tmp_path / "ft", ft, progress=False, track=False)
    _, ete_params, _ = load_ete(tiny_ete)
    assert not _leaves_equal(load(tmp_path / "ft").params["ete"], ete_params)


def test_finetune_refuses_what_cannot_work(stores, tiny_ete, tmp_path):
    with pytest.raises(TrainingError, match="two stores of one dataset"):
        finetune(tiny_ete, [stores["mw"], stores["mw"]], tmp_path / "a", FinetuneConfig(steps=1), progress=False)
    with pytest.raises(TrainingError, match="no pretraining run"):
        finetune(tmp_path, [stores["mw"]], tmp_path / "b", FinetuneConfig(steps=1), progress=False)


def test_embed_and_tsne(stores, tiny_ete, tmp_path):
    parts = [stores["mw"], stores["cm"]]
    info = embed(tiny_ete, parts, tmp_path / "e.npz")
    data = np.load(tmp_path / "e.npz")
    n = len(stores["mw"]) + len(stores["cm"])
    assert info["windows"] == n and data["features"].shape[:2] == (n, 19) and "pooled" not in data
    assert data["mask"].sum(1).tolist() == [19] * len(stores["mw"]) + [4] * len(stores["cm"])
    assert set(data["tasks"]) == {"MW", "CM"} and data["mean"].shape == (n, 32)
    out = tsne(tmp_path / "e.npz", tmp_path / "t.png", max_points=200)
    assert (tmp_path / "t.png").stat().st_size > 1000 and out["key"] == "mean"
    scores = json.loads((tmp_path / "t.json").read_text())["clustering"]
    assert set(scores) == {"MW", "CM", "tasks"} and scores["MW"]["n"] + scores["CM"]["n"] == out["points"]


def test_tsne_clustering_scores_find_clusters_whose_answer_is_known(tmp_path):
    """Three well-separated classes in one task and pure noise in another: the clustering finds
    the first exactly (ARI 1) and nothing in the second (ARI near 0)."""
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 20.0
    labels = np.repeat([0, 1, 2], 30)
    clusters = centres[labels] + rng.standard_normal((90, 3))
    noise = rng.standard_normal((90, 3))
    np.savez(tmp_path / "e.npz", mean=np.concatenate([clusters, noise]).astype(np.float32),
             labels=np.concatenate([labels, rng.integers(0, 3, 90)]), tasks=np.repeat(["A", "B"], 90),
             label_names=np.array([f"c{k}" for k in np.concatenate([labels, labels])]),
             subjects=np.zeros(180, int))
    scores = tsne(tmp_path / "e.npz", tmp_path / "t.png")["clustering"]
    assert scores["A"]["kmeans_ari"] == pytest.approx(1.0) and scores["A"]["spectral_ari"] == pytest.approx(1.0)
    assert scores["A"]["silhouette"] > 0.8
    assert abs(scores["B"]["kmeans_ari"]) < 0.1 and abs(scores["B"]["silhouette"]) < 0.1


def test_cli_finetune_evaluate_embed_tsne(stores, tiny_ete, tmp_path, capsys):
    data = [str(stores["mw"].path)]
    assert main(["finetune", "--ete", str(tiny_ete), "--data", *data, "--workdir", str(tmp_path / "ft"),
                 "--steps", "2", "--eval-every", "2", "--batch-size", "8", "--warmup", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--workdir", str(tmp_path / "ft"), "--data", *data, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and "balanced_accuracy" in report["datasets"]["synthetic-mw"]
    tuned = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert report["datasets"]["synthetic-mw"]["kept"] == kept_model(tuned)["synthetic-mw"]  # what answered
    assert main(["evaluate", "--workdir", str(tmp_path / "ft"), "--data", *data]) == 0
    assert f"synthetic-mw kept: step {tuned['best_step']} (graph)" in capsys.readouterr().out
    assert main(["embed", "--ete", str(tmp_path / "ft"), "--data", *data, "--out", str(tmp_path / "e.npz")]) == 0
    assert "pooled" in np.load(tmp_path / "e.npz")
    assert main(["tsne", str(tmp_path / "e.npz"), "--out", str(tmp_path / "t.png"), "--max-points", "100"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--workdir", str(tmp_path / "nothing"), "--data", *data]) == 2
    assert main(["tsne", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "x.png")]) == 2
    assert main(["finetune", "--ete", str(tmp_path / "nothing"), "--data", *data, "--workdir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("eegpt: ") for line in err)


def test_load_ete_reads_the_parameters_alone(tiny_ete, tmp_path):
    import shutil

    from flax import nnx

    from eegpt.checkpoint import Checkpoints
    from eegpt.train import init_state

    graphdef, params, cfg = load_ete(tiny_ete)
    _, state, _, _ = init_state(cfg)  # the full pretraining state, as saved: params + AdamW moments
    ckpt = Checkpoints(tiny_ete / "checkpoints")
    full, _ = ckpt.restore_state(None, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state))
    ckpt.close()
    assert _leaves_equal(params, full["params"]) and len(jax.tree.leaves(full["opt"])) > 0
    nnx.merge(graphdef, params)  # the structure fits the parameters
    other = tmp_path / "ete"  # a config that no longer matches its checkpoint
    shutil.copytree(tiny_ete, other)
    raw = json.loads((other / "config.json").read_text())
    for changed in ({"preset": "base"}, {"model": [["d_model", 48]]}):  # more layers; same layers, wider
        (other / "config.json").write_text(json.dumps(dict(raw, **changed)))
        with pytest.raises(TrainingError, match="does not match its config.json"):
            load_ete(other)
    (other / "config.json").write_text(json.dumps(raw))
    step = max(int(p.name) for p in (other / "checkpoints").iterdir() if p.name.isdigit())
    shutil.rmtree(other / "checkpoints" / str(step) / "state")  # a damaged copy
    with pytest.raises(TrainingError, match="has no saved parameters"):
        load_ete(other)


def test_kept_model_says_what_answers():
    """Step 0 of a linear start is the regression on the views its search chose (the graph's
    output is zero there); any later step, or a run without a linear start, is the graph over
    every node view."""
    def summary(step, init, nodes="ete+bands+erp", views="bands+erp"):
        return {"finetune": {"nodes": nodes, "readout_init": init}, "best_step": step,
                "datasets": [{"name": "a"}], "readout_start": {"a": {"view": views, "C": 0.1}} if init == "lr" else None}

    start = kept_model(summary(0, "lr"))["a"]
    assert (start["what"], start["views"], start["ete_read"]) == ("linear start", ["bands", "erp"], False)
    assert start["text"] == "step 0 (linear start): bands+erp; ETE not read"
    assert kept_model(summary(0, "lr", views="ete+bands"))["a"]["ete_read"]  # readout all: the ETE chosen
    graph = kept_model(summary(200, "lr"))["a"]
    assert (graph["what"], graph["step"], graph["ete_read"]) == ("graph", 200, True)
    assert not kept_model(summary(200, "lr", nodes="bands+erp"))["a"]["ete_read"]  # no encoder in the graph
    assert kept_model(summary(400, "zero"))["a"]["what"] == "graph"
