"""The model directory (save / load / move), predict() on every kind of input, the predict CLI,
provenance, the CLI generated from the configs, and sharded fine-tuning."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import mne
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from eegpt.cli import build_parser, main
from eegpt.errors import EEGInputError
from eegpt.finetune import FinetuneConfig, finetune
from eegpt.model import cached_batch, load, save
from eegpt.predict import predict
from eegpt.recording import read
from eegpt.train import PretrainConfig, pretrain


@pytest.fixture(scope="module")
def tuned(stores, tmp_path_factory):
    """A tiny ETE fine-tuned on the synthetic MW and SS stores; returns the finetune workdir."""
    root = tmp_path_factory.mktemp("tuned")
    pretrain(PretrainConfig(preset="tiny", steps=4, batch_size=16, seq_tokens=2, warmup=1, eval_batches=1),
             [stores["mw"]], root / "ete", progress=False, track=False)
    finetune(root / "ete", [stores["mw"], stores["ss"]], root / "ft",
             FinetuneConfig(steps=4, eval_every=2, batch_size=8, warmup=1, k_neighbours=4), progress=False,
             track=False)
    return root


def _mw_file(corpus):
    return corpus / "MW" / "sub-001_task-MW_eeg.edf"


def test_a_model_directory_is_self_contained_and_moves(tuned, stores, tmp_path):
    model = load(tuned / "ft" / "model")
    again = load(save(model, tmp_path / "copy"))
    assert again.cfg == model.cfg
    for a, b in zip(jax.tree.leaves(model.params), jax.tree.leaves(again.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # moved elsewhere, with the run that made it gone: it still loads and scores
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(tuned / "ft" / "model", moved)
    text = (moved / "config.json").read_text()
    assert str(tuned) not in text and str(stores["mw"].path) not in text  # no path to anything outside
    r1 = model.run(stores["mw"], "test")
    r2 = load(moved).run(stores["mw"], "test")
    np.testing.assert_allclose(r1["probs"], r2["probs"], atol=1e-6)
    # the finetune workdir itself resolves to its model
    assert load(tuned / "ft").cfg == model.cfg


def test_load_refuses_what_is_not_a_model(tuned, tmp_path):
    with pytest.raises(EEGInputError, match="no such model directory"):
        load(tmp_path / "missing")
    with pytest.raises(EEGInputError, match="not a model directory"):
        load(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(tuned / "ft" / "model", broken)
    shutil.rmtree(broken / "params")
    (broken / "params").mkdir()
    with pytest.raises(EEGInputError, match="params: damaged"):
        load(broken)


def test_predict_gives_the_same_probabilities_for_a_path_a_recording_and_a_raw(tuned, corpus):
    model = load(tuned / "ft")
    path = _mw_file(corpus)
    by_path = predict(model, path)
    by_rec = predict(model, read(path))
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    by_raw = predict(model, raw)
    assert by_path.head == "synthetic-mw" and by_path.task == "MW"  # the MW montage picks the MW head
    for other in (by_rec, by_raw):
        np.testing.assert_allclose(other.probs, by_path.probs, atol=1e-6)
        np.testing.assert_allclose(other.starts_s, by_path.starts_s)
    # the store's own windowing: as many windows, at the same stride, as the store cut
    spec = model.cfg.head("synthetic-mw")
    rec = read(path)
    n = int((rec.duration * spec.sfreq - spec.window_samples) // spec.stride_samples) + 1
    assert len(by_path.probs) in (n, n - 1) and np.allclose(np.diff(by_path.starts_s), spec.stride_samples / spec.sfreq)
    assert np.allclose(by_path.probs.sum(1), 1, atol=1e-5) and by_path.pooled.shape[0] == len(by_path.probs)
    assert by_path.label == max(by_path.summary, key=by_path.summary.get)
    # a head chosen by task, and the first seconds only
    ss = predict(model, path, task="SS")
    assert ss.head == "synthetic-ss" and len(ss.classes) == 5
    short = predict(model, path, seconds=12)
    assert short.starts_s[-1] + short.window_s <= 12 + 1e-6


def test_predict_reads_a_numbered_cap_onto_the_heads_montage(tuned, corpus, capsys):
    """place='montage': a cap of numbered channels with positions is interpolated onto the answering
    head's electrodes. At the 10-10 sites it answers as the same recording read by name does."""
    from eegpt.electrodes import position

    model = load(tuned / "ft")
    raw = mne.io.read_raw_edf(_mw_file(corpus), preload=True, verbose="error")
    by_name = predict(model, raw, task="MW")
    electrodes = read(raw).electrodes
    numbered = raw.copy().pick(read(raw).raw_names)
    numbered.rename_channels({n: f"E{i + 1}" for i, n in enumerate(numbered.ch_names)})
    numbered.set_montage(mne.channels.make_dig_montage(
        {f"E{i + 1}": 0.95 * position(e) for i, e in enumerate(electrodes)}, coord_frame="head"))
    onto = predict(model, numbered, task="MW", place="montage")
    assert "sites of the montage" in onto.read_as and by_name.read_as == f"{len(electrodes)} electrodes by name"
    np.testing.assert_allclose(onto.probs, by_name.probs, atol=1e-4)
    numbered.save(corpus.parent / "numbered_raw.fif", overwrite=True, verbose=False)
    assert main(["predict", str(corpus.parent / "numbered_raw.fif"), "--model", str(tuned / "ft"),
                 "--place", "montage"]) == 0
    said = capsys.readouterr().out
    assert "MW via synthetic-mw" in said and f"onto {len(electrodes)} sites of the montage" in said
    with pytest.raises(EEGInputError, match="keeps no positions"):
        predict(model, read(raw), place="montage")
    with pytest.raises(EEGInputError, match="none of the electrodes to interpolate onto"):
        predict(model, numbered, task="SS", place="montage")  # the sleep head reads bipolar derivations


def test_predict_refuses_bad_input(tuned, corpus, tmp_path):
    model = load(tuned / "ft")
    with pytest.raises(EEGInputError, match="no such file"):
        predict(model, tmp_path / "missing.edf")
    with pytest.raises(EEGInputError, match="no CM head"):
        predict(model, _mw_file(corpus), task="CM")
    from eegpt.preprocess import preprocess

    with pytest.raises(EEGInputError, match="already preprocessed"):
        predict(model, preprocess(read(_mw_file(corpus))))
    rec = read(_mw_file(corpus))
    short = dataclasses.replace(rec, signals=rec.signals[:, : int(2 * rec.sfreq)])
    with pytest.raises(EEGInputError, match="shorter than one"):
        predict(model, short)


def test_provenance_says_synthetic(tuned):
    cfg = load(tuned / "ft").cfg
    assert cfg.synthetic and "synthetic EEG only" in cfg.trained_on()
    ds = {d["card"]: d for d in cfg.provenance["datasets"]}
    assert ds["synthetic-mw"]["subjects"] >= 1 and ds["synthetic-mw"]["windows"] > 0
    assert cfg.provenance["encoder"]["data"] == ["synthetic-mw"]


def test_predict_command_writes_json_csv_and_a_plot_and_refuses_overwrites(tuned, corpus, tmp_path, capsys):
    model = str(tuned / "ft" / "model")
    f = str(_mw_file(corpus))
    outs = {"--csv": tmp_path / "p.csv", "--plot": tmp_path / "p.png", "--json-out": tmp_path / "p.json"}
    assert main(["predict", f, "--model", model, *[str(x) for kv in outs.items() for x in kv]]) == 0
    said = capsys.readouterr().out
    assert "synthetic EEG only" in said
    saved = json.loads(outs["--json-out"].read_text())
    rows = outs["--csv"].read_text().splitlines()
    assert rows[0] == "start_s,label,rest,arithmetic" and len(rows) == len(saved["windows"]) + 1
    assert outs["--plot"].read_bytes()[:4] == b"\x89PNG"
    assert main(["predict", f, "--model", model, "--csv", str(outs["--csv"])]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["predict", f, "--model", model, "--csv", str(tmp_path / "no" / "p.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["predict", f, "--model", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["head"] == "synthetic-mw"
    # a sleep head draws a hypnogram
    assert main(["predict", str(corpus / "SS" / "sub-001_task-SS_eeg.edf"), "--model", model, "--task", "SS",
                 "--plot", str(tmp_path / "h.png")]) == 0


@pytest.mark.parametrize("page", ["README.md", "docs/getting_started.md"])
def test_the_python_sessions_run_as_written(page, tuned, stores, corpus, tmp_path, monkeypatch):
    """The "From Python" blocks of the README and of the docs' getting-started page, executed as
    written, with their three paths pointed at a small model (given a small copilot decoder) and the
    synthetic corpus."""
    import re

    from eegpt.copilot import decoder as D

    readme = (Path(__file__).resolve().parents[1] / page).read_text()
    code = re.search(r"<!-- from-python -->\n```python\n(.*?)```\n<!-- /from-python -->", readme, re.S).group(1)
    model_dir = tmp_path / "model"
    shutil.copytree(tuned / "ft" / "model", model_dir)
    D.train(model_dir / "copilot", D.CopilotTrainConfig(pairs=200, steps=5, vocab=400, warmup=1),
            D.DecoderConfig(d_model=32, layers=1, heads=2, head_dim=16, ffn=64, eeg_features=32), progress=False)
    paths = {"MODEL": model_dir, "RECORDING": _mw_file(corpus), "STORE": stores["mw"].path}
    for name, value in paths.items():
        code, n = re.subn(rf'^{name} = "[^"]*"', f"{name} = {str(value)!r}", code, flags=re.M)
        assert n == 1, name
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, page, "exec"), scope)
    assert scope["pred"].head == "synthetic-mw" and "synthetic EEG only" in scope["pred"].trained_on
    assert (tmp_path / "tsne.png").exists()
    written = {"README.md": "probabilities.png", "docs/getting_started.md": "windows.csv"}[page]
    assert (tmp_path / written).exists()
    assert scope["clusters"]["points"] == len(stores["mw"].indices("test"))
    assert "synthetic EEG only" in scope["answer"]["answer"]


# ----------------------------------------------------------------------------- the CLI from the configs

@pytest.mark.parametrize("command,cls", [("pretrain", "eegpt.train.PretrainConfig"),
                                         ("finetune", "eegpt.finetune.FinetuneConfig"),
                                         ("prepare", "eegpt.preprocess.Preprocess"),
                                         ("copilot-train", "eegpt.copilot.decoder.CopilotTrainConfig")])
def test_every_config_field_is_an_option(command, cls):
    import importlib

    module, name = cls.rsplit(".", 1)
    cfg_cls = getattr(importlib.import_module(module), name)
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    flags = {o for a in sub._actions for o in a.option_strings}
    for f in dataclasses.fields(cfg_cls):
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        assert flag in flags or "--no-" + f.name.replace("_", "-") in flags, f"{command} lacks {flag}"
        helps = [a.help for a in sub._actions if a.dest == f.name]
        assert helps and helps[0], f"{flag} has no help"


def test_config_options_reach_the_config():
    from eegpt.options import config_from
    from eegpt.finetune import FinetuneConfig
    from eegpt.train import PretrainConfig

    p = build_parser()
    args = p.parse_args(["finetune", "--ete", "e", "--data", "d", "--workdir", "w", "--gate-start", "ones",
                         "--k-neighbours", "none", "--mesh", "2,4", "--no-class-balanced"])
    ft = config_from(FinetuneConfig, args)
    assert (ft.gate_start, ft.k_neighbours, ft.mesh, ft.class_balanced) == ("ones", None, (2, 4), False)
    assert ft.steps == FinetuneConfig().steps  # defaults come from the config itself
    args = p.parse_args(["pretrain", "--data", "d", "--workdir", "w", "--data-fraction", "0.3",
                         "--model", "d_model=64", "layers=2"])
    cfg = config_from(PretrainConfig, args)
    assert cfg.data_fraction == 0.3 and cfg.model == (("d_model", 64), ("layers", 2))
    assert cfg.ete_config().d_model == 64


@pytest.mark.parametrize("argv,says", [
    (["pretrain", "--data", "{mw}", "--workdir", "{d}/w", "--steps", "0"], "--steps 0: must be positive"),
    (["pretrain", "--data", "{mw}", "--workdir", "{d}/w", "--steps", "-5"], "--steps -5: must be positive"),
    (["finetune", "--ete", "{d}", "--data", "{mw}", "--workdir", "{d}/w", "--lr", "0"], "--lr 0.0: must be positive"),
    (["copilot-train", "--workdir", "{d}/w", "--batch-size", "0"], "--batch-size 0: must be positive"),
])
def test_impossible_arguments_are_refused_before_any_work(stores, tmp_path, capsys, argv, says):
    assert main([a.format(d=tmp_path, mw=stores["mw"].path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err
    assert not (tmp_path / "w").exists()  # a failed command leaves no workdir behind


def test_a_run_is_not_silently_shortened_or_resumed_with_another_model(stores, tmp_path, capsys):
    base = ["pretrain", "--data", str(stores["mw"].path), "--workdir", str(tmp_path / "r"), "--preset", "tiny",
            "--batch-size", "16", "--seq-tokens", "2", "--warmup", "1", "--eval-batches", "1", "--quiet"]
    assert main([*base, "--steps", "3"]) == 0
    saved = (tmp_path / "r" / "config.json").read_text()
    capsys.readouterr()
    assert main([*base, "--steps", "2"]) == 2
    assert "already trained to step 3" in capsys.readouterr().err
    assert (tmp_path / "r" / "config.json").read_text() == saved  # not rewritten to say 2
    assert main([*[a if a != "tiny" else "base" for a in base], "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "holds another pretraining run" in err and "preset 'tiny' here, 'base' asked" in err
    assert (tmp_path / "r").exists()  # an existing run is never removed


def test_prepare_refuses_to_replace_another_cards_store(corpus, stores, tmp_path, capsys):
    out = tmp_path / "s"
    shutil.copytree(stores["cm"].path, out)
    argv = ["prepare", "synthetic-mw", "--source", str(corpus), "--out", str(out), "--quiet", "--workers", "1"]
    assert main(argv) == 2
    assert "holds a store of card synthetic-cm" in capsys.readouterr().err
    assert json.loads((out / "index.json").read_text())["card"] == "synthetic-cm"  # untouched
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((out / "index.json").read_text())["card"] == "synthetic-mw"


# ----------------------------------------------------------------------------- sharded fine-tuning

SHARDED = textwrap.dedent("""
    import os, sys, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax
    from eegpt.finetune import FinetuneConfig, finetune
    ete, mw, ss, out = sys.argv[1:5]
    res = {}
    for name, mesh in {"single": (1, 1), "sharded": (4, 2)}.items():
        ft = FinetuneConfig(steps=4, eval_every=2, batch_size=8, warmup=1, k_neighbours=4, mesh=mesh)
        r = finetune(ete, [mw, ss], f"{out}/{name}", ft, progress=False, track=False)
        res[name] = {"loss": [h["loss"] for h in r["history"]],
                     "val": [h["val_mean"] for h in r["history"]], "devices": len(jax.devices())}
    print(json.dumps(res))
""")


@pytest.mark.slow
def test_sharded_finetuning_matches_single_device(tuned, stores, tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    res = subprocess.run([sys.executable, "-c", SHARDED, str(tuned / "ete"), str(stores["mw"].path),
                          str(stores["ss"].path), str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["sharded"]["devices"] == 8
    np.testing.assert_allclose(out["sharded"]["loss"], out["single"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(out["sharded"]["val"], out["single"]["val"], rtol=1e-4)


def test_each_host_feeds_its_rows_with_edges_into_the_global_batch(tuned, stores):
    """Two hosts' rows, put side by side, are the one-host batch of the same rows: same features,
    and every edge joins the same two global nodes (never across samples)."""
    from eegpt.electrodes import positions
    from teg import electrode_edges

    model = load(tuned / "ft")
    store = stores["mw"]
    cache = model.cache(store)
    rows = store.indices("train")[:8]
    from eegpt.sharding import host_graph_batch

    parts = [host_graph_batch(cached_batch(cache, store, rows[h * 4:(h + 1) * 4]), 4, h, 2) for h in range(2)]
    whole = cached_batch(cache, store, rows)
    np.testing.assert_array_equal(np.concatenate([p["features_BxExF"] for p in parts]), whole["features_BxExF"])
    senders = np.concatenate([p["senders"] for p in parts]).reshape(-1)
    receivers = np.concatenate([p["receivers"] for p in parts]).reshape(-1)
    s_ref, r_ref = electrode_edges(whole["electrodes_BxE"], whole["mask_BxE"], positions(), 4)
    np.testing.assert_array_equal(senders, s_ref)
    np.testing.assert_array_equal(receivers, r_ref)


@pytest.mark.slow
def test_finetuning_resumes_after_sigkill_as_if_uninterrupted(tuned, stores, tmp_path):
    import signal
    import time

    args = ["finetune", "--ete", str(tuned / "ete"), "--data", str(stores["mw"].path), str(stores["ss"].path),
            "--steps", "200", "--eval-every", "20", "--batch-size", "8", "--k-neighbours", "4", "--patience", "100",
            "--quiet"]
    ref = tmp_path / "ref"
    assert main([*args, "--workdir", str(ref)]) == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "eegpt.cli", *args, "--workdir", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (killed / "checkpoints" / "60").exists():
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and not (killed / "model").exists()  # it died mid-run
    assert main([*args, "--workdir", str(killed)]) == 0
    a, b = (json.loads((d / "finetune.json").read_text()) for d in (ref, killed))
    assert b["resumed_from"] >= 60 and [h["step"] for h in a["history"]] == [h["step"] for h in b["history"]]
    np.testing.assert_allclose([h["loss"] for h in b["history"]], [h["loss"] for h in a["history"]], rtol=1e-5)
    assert [h["val_mean"] for h in b["history"]] == pytest.approx([h["val_mean"] for h in a["history"]], rel=1e-6)
    np.testing.assert_allclose(load(killed).run(stores["mw"], "test")["probs"],
                               load(ref).run(stores["mw"], "test")["probs"], atol=1e-6)


def test_band_log_power_finds_the_band_of_a_rhythm():
    from eegpt.features import band_log_power

    t = np.arange(4 * 256) / 256
    rows = [np.sin(2 * np.pi * f * t) for f in (2.5, 6.0, 10.0, 20.0, 38.0)]  # one per band, in order
    tokens = np.stack([r.reshape(4, 256) for r in rows]).astype(np.float32)
    power = np.asarray(band_log_power(jnp.asarray(tokens), jnp.asarray([4, 4, 4, 4, 4]), 256.0))
    assert list(power.argmax(1)) == [0, 1, 2, 3, 4]
    padded = np.concatenate([tokens, np.zeros((5, 2, 256), np.float32)], 1)  # padded tokens are not counted
    np.testing.assert_allclose(np.asarray(band_log_power(jnp.asarray(padded), jnp.asarray([4] * 5), 256.0)), power,
                               rtol=1e-5)


@pytest.mark.parametrize("nodes,readout", [("ete+bands", "classical"), ("bands+erp", "all")])
def test_band_nodes_and_the_electrode_readout_train_save_and_predict(tuned, stores, corpus, tmp_path, nodes, readout):
    ft = FinetuneConfig(steps=60, eval_every=60, batch_size=16, warmup=5, lr=3e-3, k_neighbours=4, nodes=nodes,
                        readout=readout)
    out = finetune(tuned / "ete", [stores["mw"]], tmp_path / "ft", ft, progress=False, track=False)
    model = load(tmp_path / "ft")
    assert model.cfg.nodes == nodes and model.cfg.node_width == (32 + 5 if nodes == "ete+bands" else 5 + 16)
    assert model.cfg.teg.readout_features == (5 if readout == "classical" else model.cfg.node_width)
    # it learned: the training subject's windows, at chance before (two classes), are told apart after
    s = stores["mw"]
    train = s.indices("train")
    learnt = balanced_accuracy_score(s.labels[train], model.run(s, "train")["probs"].argmax(1))
    assert out["best_step"] == 60 and learnt >= 0.8, learnt
    pred = predict(model, _mw_file(corpus))
    assert pred.probs.shape[1] == 2 and np.isfinite(pred.probs).all()


def test_the_linear_start_is_a_logistic_regression_on_each_electrodes_band_powers(tuned, stores, tmp_path):
    """readout_init="lr": the head starts as a logistic regression fitted on the training windows'
    band powers (electrode by electrode) scaled to unit variance, the graph silent; with a learning
    rate too small to move it, the kept model gives that regression's probabilities."""
    from sklearn.linear_model import LogisticRegression

    s = stores["ss"]
    ft = FinetuneConfig(steps=2, eval_every=2, batch_size=8, warmup=1, lr=1e-12, k_neighbours=4, nodes="ete+bands",
                        readout="classical", readout_init="lr")
    out = finetune(tuned / "ete", [s], tmp_path / "ft", ft, progress=False, track=False)
    assert out["history"][0]["step"] == 0 and out["readout_start"][s.name]["C"] in (0.001, 0.01, 0.1, 1.0, 10.0)
    model = load(tmp_path / "ft")
    cache = model.cache(s)
    norm = {k: np.asarray(v) for k, v in model.params["norm"].items()}
    ids = cache["electrodes"]
    x = ((cache["features"] - norm["mean"][ids]) / norm["std"][ids])[..., -5:].reshape(len(ids), -1)
    train, test = s.indices("train"), s.indices("test")
    x = x / (x[train].std(0) + 1e-6)  # StandardScaler's scaling, folded into the readout's weights
    lr = LogisticRegression(max_iter=3000, C=out["readout_start"][s.name]["C"], class_weight="balanced")
    lr.fit(x[train], s.labels[train])
    expected = np.zeros((len(test), len(s.classes)))
    expected[:, lr.classes_] = lr.predict_proba(x[test])
    from scipy.special import softmax

    run = model.run(s, "test")  # before the head's temperature (fitted on validation afterwards)
    np.testing.assert_allclose(softmax(run["logits"], axis=1), expected, atol=2e-3)


def test_the_linear_start_with_readout_all_chooses_among_the_ete_and_the_classical_views(tuned, stores, tmp_path):
    """readout="all": the ETE's features are a view like the band powers; the validation subjects
    choose one of them or both, and the columns of a view not chosen start at zero weight."""
    s = stores["mw"]
    ft = FinetuneConfig(steps=1, eval_every=1, batch_size=8, warmup=1, lr=1e-12, k_neighbours=4, nodes="ete+bands",
                        readout="all", readout_init="lr", readout_search="each")
    out = finetune(tuned / "ete", [s], tmp_path / "ft", ft, progress=False, track=False)
    view = out["readout_start"][s.name]["view"]
    assert view in ("ete", "bands", "ete+bands")
    weights = np.asarray(load(tmp_path / "ft").params["teg"]["readout"][s.name])  # [vocabulary, 32 + 5, classes]
    assert weights.shape[1] == 32 + 5
    for name, cols in (("ete", slice(0, 32)), ("bands", slice(32, 37))):
        assert np.any(weights[:, cols]) == (name in view.split("+")), (name, view)
    from eegpt.evaluate import kept_model

    kept = kept_model(out)[s.name]  # what answers: the start, unless a trained step beat it on validation
    if out["best_step"] == 0:
        assert kept["what"] == "linear start" and kept["views"] == view.split("+")
        assert kept["ete_read"] == ("ete" in view.split("+"))
    else:
        assert kept["what"] == "graph" and kept["ete_read"]


def test_probe_scores_each_feature_set_grouped_by_subject(tuned, stores):
    from eegpt.embed import PROBES, probe

    r = probe(tuned / "ete", [stores["mw"]], folds=3)["synthetic-mw"]
    assert r["subjects"] == 3 and r["windows"] == len(stores["mw"]) and r["chance"] == 0.5
    for name in PROBES:
        assert len(r[name]["folds"]) == 3 and r[name]["mean"] == pytest.approx(np.mean(r[name]["folds"]))
    # the band-power probe written out with scikit-learn: each subject held out once, C chosen by
    # leaving out each of the two others in turn, scored on the held-out subject alone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from eegpt.baseline import store_arrays
    from eegpt.features import band_power

    x, y, subjects = store_arrays(stores["mw"])
    feats = band_power(x, stores["mw"].index["sfreq"])
    expected = []
    for held_out in np.unique(subjects):
        tr, te = subjects != held_out, subjects == held_out
        search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced")),
                              {"logisticregression__C": [0.001, 0.01, 0.1, 1.0, 10.0]}, scoring="balanced_accuracy",
                              cv=LeaveOneGroupOut().split(feats[tr], y[tr], subjects[tr])).fit(feats[tr], y[tr])
        expected.append(balanced_accuracy_score(y[te], search.predict(feats[te])))
    assert sorted(r["band_power"]["folds"]) == pytest.approx(sorted(expected))


def test_baselines_choose_their_setting_on_the_validation_subjects(stores):
    from eegpt.baseline import fit_predict

    s = stores["mw"]
    _, _, none = fit_predict("band_power", s, s.indices("train"), s.indices("test"))
    probs, labels, chosen = fit_predict("band_power", s, s.indices("train"), s.indices("test"), s.indices("val"))
    assert none == {} and chosen["logisticregression__C"] in (0.001, 0.01, 0.1, 1.0, 10.0)
    assert probs.shape == (len(labels), 2)
    # the features are computed once for every setting: the kept model is the pipeline fitted whole
    from eegpt.baseline import make, store_arrays

    x, y, _ = store_arrays(s, s.indices("train"))
    whole = make("band_power", 256.0).set_params(**chosen).fit(x, y)
    np.testing.assert_array_equal(whole.predict_proba(store_arrays(s, s.indices("test"))[0]), probs)


def test_the_csp_band_pass_is_mne_filter_data():
    import mne

    from eegpt.baseline import _band_pass

    x = np.random.default_rng(3).standard_normal((3, 4, 1024)) * 20
    for sfreq in (160.0, 256.0):
        want = mne.filter.filter_data(x, sfreq, 8.0, 30.0, verbose="error")
        np.testing.assert_allclose(_band_pass(x, sfreq), want, atol=1e-5 * np.abs(want).max())


@pytest.mark.slow  # about half a minute on 2 cores
def test_without_validation_subjects_settings_are_chosen_by_cross_validation_over_training_subjects(
        tuned, stores, tmp_path):
    """A protocol that scores its validation subjects leaves nothing to select on: the peers' C and
    the linear start's views and C are then chosen by cross-validation grouped by subject over the
    training subjects (the choice a manual grouped search makes), and the model kept is the linear
    start."""
    from sklearn.model_selection import GroupKFold, cross_val_score

    from eegpt.baseline import GRID, fit_predict, make, store_arrays

    s = stores["mw"]
    split = np.where(s.split_of == "test", "test", "train")  # 2 subjects train, 1 scored, none select
    s2 = s.with_splits(split)
    train, test = s2.indices("train"), s2.indices("test")
    _, _, too_few = fit_predict("band_power", s2, train, test)
    assert too_few == {}  # 2 training subjects: nothing to hold out, the default C
    everything = np.arange(len(s))  # 3 subjects: 3 grouped folds
    _, _, chosen = fit_predict("band_power", s, everything, test)
    x, y, groups = store_arrays(s, everything)
    scores = {c: cross_val_score(make("band_power", 256.0).set_params(logisticregression__C=c), x, y, groups=groups,
                                 cv=GroupKFold(3), scoring="balanced_accuracy").mean()
              for c in GRID["band_power"]["logisticregression__C"]}
    assert chosen == {"logisticregression__C": max(scores, key=scores.get)}
    ft = FinetuneConfig(steps=2, eval_every=1, batch_size=8, warmup=1, k_neighbours=4, nodes="bands+erp",
                        readout="classical", readout_init="lr")
    out = finetune(tuned / "ete", [s2], tmp_path / "two", ft, progress=False, track=False)
    assert out["readout_start"][s.name] == {"view": "bands+erp", "C": 0.1, "selected_on": "defaults"}
    # nothing validates the graph's steps: the kept model is the linear start
    assert out["best_step"] == 0 and out["selected_on"] == "linear start (no validation windows)"
    out = finetune(tuned / "ete", [s.with_splits(np.full(len(s), "train"))], tmp_path / "three", ft, progress=False,
                   track=False)
    start = out["readout_start"][s.name]
    assert start["selected_on"] == "3-fold cross-validation over training subjects"
    assert start["view"] in ("bands", "erp", "bands+erp") and start["C"] in GRID["band_power"]["logisticregression__C"]


def test_fine_tuning_learns_sleep_stages_of_an_unseen_subject(tuned, stores, tmp_path):
    """Learning, not ranges: the graph alone (no linear start, band-power nodes) trained a few
    hundred steps on one synthetic subject's night stages another subject's night well above
    chance (0.2); the linear start does at least as well from step 0."""
    s = stores["ss"]
    graph = FinetuneConfig(steps=300, eval_every=100, batch_size=16, lr=3e-3, k_neighbours=2, nodes="bands",
                           patience=100)
    finetune(tuned / "ete", [s], tmp_path / "graph", graph, progress=False, track=False)
    learnt = load(tmp_path / "graph").evaluate(s, "test")["balanced_accuracy"]
    start = dataclasses.replace(graph, steps=1, readout="classical", readout_init="lr", lr=1e-12)
    finetune(tuned / "ete", [s], tmp_path / "linear", start, progress=False, track=False)
    linear = load(tmp_path / "linear").evaluate(s, "test")["balanced_accuracy"]
    assert learnt > 0.45 and linear > 0.45, (learnt, linear)


def test_laplacian_view_is_the_band_power_of_each_electrode_minus_its_four_nearest(tuned, stores, tmp_path):
    """nodes "lap": per electrode, the five log band powers of its signal minus the mean of its four
    nearest electrodes of the same window (by the vocabulary's positions), computed here in numpy."""
    from eegpt.electrodes import ID, positions
    from eegpt.features import band_log_power
    from eegpt.pipeline import tokenize

    s = stores["mi"]
    ft = FinetuneConfig(steps=1, eval_every=1, batch_size=8, warmup=1, lr=1e-12, k_neighbours=4, nodes="bands+lap")
    finetune(tuned / "ete", [s], tmp_path / "ft", ft, progress=False, track=False)
    model = load(tmp_path / "ft")
    cache = model.cache(s)
    for row in (0, len(s) - 1):
        w = s[row]
        ids = np.asarray([ID[e] for e in w.electrodes])
        pos = positions()[ids]
        dist = ((pos[:, None] - pos[None]) ** 2).sum(-1)
        np.fill_diagonal(dist, np.inf)
        lap = w.x - w.x[np.argsort(dist, 1, kind="stable")[:, :4]].mean(1)
        tokens = tokenize(lap.astype(np.float32), model.cfg.tokens)
        expected = np.asarray(band_log_power(jnp.asarray(tokens), jnp.full(len(ids), tokens.shape[1]), 256.0))
        mask = cache["mask"][row]
        got = cache["features"][row][mask][:, -5:]
        order = np.argsort(cache["electrodes"][row][mask])  # the cache's electrode order is its own
        np.testing.assert_allclose(got[order], expected[np.argsort(ids)], rtol=1e-3, atol=1e-3)
        raw = cache["features"][row][mask][:, :5]  # the raw band powers differ: the view is not a copy
        assert np.abs(raw - got).max() > 0.1


@pytest.mark.parametrize("seconds", [1, 4, 30])
def test_band_powers_are_welchs_as_the_band_power_baseline_reads_them(seconds):
    """The model's spectral view is scipy's Welch estimate (1-s Hann segments, half overlap) that
    the band-power peer reads, up to one constant (scipy's density scaling); the relative view is
    each band's share of the total."""
    from eegpt.features import band_power
    from eegpt.features import band_log_power, relative
    from eegpt.pipeline import Tokens, tokenize

    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(3, 256 * seconds)), -1).astype(np.float32)  # 1/f^2: strong slow power
    x += np.sin(2 * np.pi * 10 * np.arange(x.shape[1]) / 256.0)
    tokens = tokenize(x, Tokens(256))
    got = np.asarray(band_log_power(jnp.asarray(tokens), jnp.full(3, tokens.shape[1]), 256.0))
    want = band_power(x[None], 256.0).reshape(3, 5)
    offset = got - want
    np.testing.assert_allclose(offset, offset.mean(), atol=2e-3)
    shares = np.exp(np.asarray(relative(jnp.asarray(got))))
    np.testing.assert_allclose(shares.sum(-1), 1.0, rtol=1e-5)


def test_the_familiar_reference_tells_a_new_subject_from_unlike_data():
    from eegpt.familiar import familiar_reference, nearest_distance

    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 1.0, (6, 8))  # each subject shifts the profile a little
    subjects = np.repeat(np.arange(5), 80)
    train = offsets[subjects] + rng.normal(0, 1.0, (400, 8))
    ref, threshold = familiar_reference(train, subjects)
    new_subject = offsets[5] + rng.normal(0, 1.0, (80, 8))
    unlike = 6.0 + rng.normal(0, 1.0, (80, 8))  # another kind of data altogether
    assert (nearest_distance(new_subject, ref) > threshold).mean() < 0.1
    assert (nearest_distance(unlike, ref) > threshold).mean() > 0.9
    assert familiar_reference(train[:160], subjects[:160]) is None  # two subjects cannot show a third's distance
