import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from eegpt.cli import main
from eegpt.train import PretrainConfig, pretrain
from eegpt.errors import TrainingError

from conftest import on_eight_devices

FAST = dict(preset="tiny", batch_size=32, seq_tokens=4, lr=3e-3, warmup=5, log_every=5, eval_batches=5)


@pytest.fixture(scope="module")
def mw(stores):
    return stores["mw"]  # 3 subjects: train / val / test


def _losses(workdir):
    return [json.loads(line)["loss"] for line in (workdir / "history.jsonl").read_text().splitlines()]


def test_pretrain_writes_metrics_and_resumes_with_more_steps(mw, tmp_path):
    cfg = PretrainConfig(steps=20, ckpt_every=10, **FAST)
    m = pretrain(cfg, [mw], tmp_path, progress=False, track=False)
    assert m["step"] == 20 and m["resumed_from"] == 0
    assert {"val_mse", "zero_mse", "persistence_mse", "linear_ar_mse"} <= set(m)  # what training learns: below
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    more = pretrain(PretrainConfig(steps=30, ckpt_every=10, **FAST), [mw], tmp_path, progress=False, track=False)
    assert more["step"] == 30 and more["resumed_from"] == 20
    assert len(_losses(tmp_path)) == 30


@pytest.mark.slow
def test_resume_after_sigkill_reproduces_the_uninterrupted_losses(mw, tmp_path):
    args = ["pretrain", "--preset", "tiny", "--data", str(mw.path), "--steps", "400", "--batch-size", "32",
            "--seq-tokens", "4", "--lr", "3e-3", "--warmup", "5", "--ckpt-every", "50", "--eval-batches", "2",
            "--quiet"]
    ref = tmp_path / "ref"
    assert main(args + ["--workdir", str(ref)]) == 0
    assert list((ref / "tb").glob("events.out.tfevents.*"))  # TensorBoard logs of the run
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "eegpt.cli", *args, "--workdir", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "checkpoints" / "100").exists():
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # it really died mid-run
    assert not (killed / "metrics.json").exists()
    assert main(args + ["--workdir", str(killed)]) == 0
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["resumed_from"] >= 100 and metrics["step"] == 400
    np.testing.assert_allclose(_losses(killed), _losses(ref), rtol=1e-5)


@pytest.mark.parametrize("mode,objective,bf16,lr", [("electrode", "ar", False, 3e-3), ("multichannel", "ar", False, 3e-3),
                                                    ("electrode", "mae", False, 1e-2), ("electrode", "ar", True, 3e-3)])
def test_pretraining_learns_to_predict_held_out_tokens_in_every_mode(mw, tmp_path, mode, objective, bf16, lr):
    """300 steps of the tiny preset predict the validation subject's tokens better than the zero
    (the data's mean) and persistence (the previous token) predictors, scored on the same tokens."""
    cfg = PretrainConfig(steps=300, ckpt_every=300, mode=mode, objective=objective, bf16=bf16,
                         **{**FAST, "lr": lr, "batch_size": 8 if mode == "multichannel" else 32})
    m = pretrain(cfg, [mw], tmp_path, progress=False, track=False)
    assert m["step"] == 300
    assert m["val_mse"] < 0.95 * m["zero_mse"] and m["val_mse"] < 0.95 * m["persistence_mse"], m
    assert ("linear_ar_mse" in m) == (objective == "ar")


def test_divergence_stops_without_saving(mw, tmp_path):
    cfg = PretrainConfig(steps=40, ckpt_every=20, **{**FAST, "lr": 1e9, "clip": 1e9, "warmup": 1})
    with pytest.raises(TrainingError, match="training diverged; stopped without saving"):
        pretrain(cfg, [mw], tmp_path, progress=False, track=False)
    assert not list((tmp_path / "checkpoints").glob("[0-9]*")) or all(
        int(p.name) < 20 for p in (tmp_path / "checkpoints").glob("[0-9]*"))


SHARDED = textwrap.dedent("""
    import os, sys, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, numpy as np
    from eegpt.train import PretrainConfig, init_state, make_train_step
    from eegpt import sharding
    from ete.model import VOCAB_SIZE
    cfg = PretrainConfig(preset="tiny", batch_size=16, seq_tokens=4)
    rng = np.random.default_rng(0)
    batch = {"tokens_BxNxP": rng.standard_normal((16, 4, 64)).astype(np.float32) * 0.1,
             "electrode_B": rng.integers(0, VOCAB_SIZE, 16).astype(np.int32),
             "dataset_B": np.zeros(16, np.int32)}
    out = {}
    for name, (data, fsdp) in {"single": (1, 1), "sharded": (2, 4)}.items():
        devices = jax.devices()[: data * fsdp]
        mesh = jax.make_mesh((data, fsdp), ("data", "fsdp"), devices=devices,
                             axis_types=(jax.sharding.AxisType.Auto,) * 2)
        graphdef, state, tx, schedule = init_state(cfg)
        sh = sharding.state_shardings(state, mesh)
        state = jax.device_put(state, sh)
        step = make_train_step(cfg, graphdef, tx, schedule, sh, sharding.batch_sharding(mesh))
        losses = []
        for _ in range(3):
            state, m = step(state, sharding.global_batch(batch, mesh))
            losses.append(float(m["loss"]))
        out[name] = {"losses": losses, "n_devices": len(devices),
                     "sharded_params": sum(1 for x in jax.tree.leaves(state["params"])
                                           if len(x.sharding.device_set) > 1 and not x.sharding.is_fully_replicated)}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_sharded_step_matches_single_device():
    out = on_eight_devices(SHARDED)
    assert out["sharded"]["n_devices"] == 8 and out["sharded"]["sharded_params"] > 0
    np.testing.assert_allclose(out["sharded"]["losses"], out["single"]["losses"], rtol=1e-5)


def test_pretrain_bad_arguments_are_one_line(mw, tmp_path, capsys):
    assert main(["pretrain", "--preset", "nope", "--data", str(mw.path), "--workdir", str(tmp_path)]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["pretrain", "--preset", "tiny", "--data", str(mw.path), "--workdir", str(tmp_path),
                 "--seq-tokens", "99", "--quiet"]) == 2
    assert "fewer than --seq-tokens 99" in capsys.readouterr().err
    assert main(["pretrain", "--preset", "tiny", "--data", str(tmp_path / "none"), "--workdir", str(tmp_path)]) == 2
    assert "not a prepared store" in capsys.readouterr().err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_as_one(mw, tmp_path):
    """``jax.distributed`` on this machine: two processes (a localhost coordinator, one CPU device
    each) pretrain together, each feeding its own share of every batch. Their losses equal one
    process's steps on the same global batches (each host's share side by side), and process 0
    alone writes the run's files."""
    import jax

    from eegpt import sharding
    from eegpt.pipeline import pretrain_batches
    from eegpt.train import init_state, make_train_step

    steps, args = 6, ["pretrain", "--preset", "tiny", "--data", str(mw.path), "--steps", "6", "--batch-size", "32",
                      "--seq-tokens", "4", "--lr", "3e-3", "--warmup", "2", "--ckpt-every", "3",
                      "--eval-batches", "2", "--quiet", "--workdir", str(tmp_path / "two")]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device per process
    procs = [subprocess.Popen([sys.executable, "-m", "eegpt.cli", *args],
                              env={**env, "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2",
                                   "JAX_PROCESS_ID": str(i)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i in range(2)]
    outs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    two = _losses(tmp_path / "two")
    assert len(two) == steps
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    # the held-out MSE is summed over both processes' shares: 2 batches x 32 sequences x 3 later tokens
    assert metrics["step"] == steps and metrics["eval_positions"] == 2 * 32 * 3
    assert not (tmp_path / "two" / "history.jsonl.tmp").exists() and len(list((tmp_path / "two").glob("*.json"))) == 2

    # one process, the same global batches: host 0's rows, then host 1's
    cfg = PretrainConfig(preset="tiny", steps=steps, batch_size=32, seq_tokens=4, lr=3e-3, warmup=2, ckpt_every=3,
                         eval_batches=2)
    graphdef, state, tx, schedule = init_state(cfg)
    mesh = sharding.make_mesh(1, 1)
    state_sh = sharding.state_shardings(state, mesh)
    step = make_train_step(cfg, graphdef, tx, schedule, state_sh, sharding.batch_sharding(mesh))
    state = jax.device_put(state, state_sh)
    hosts = [iter(pretrain_batches([mw], "train", 16, 4, tokens=cfg.tokens(), seed=cfg.seed, epochs=None,
                                   drop_remainder=True, fraction=1.0, shuffle_window=1024, shard_index=h,
                                   shard_count=2)) for h in range(2)]
    one = []
    for _ in range(steps):
        parts = [next(h) for h in hosts]
        batch = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
        state, m = step(state, sharding.global_batch(batch, mesh))
        one.append(float(m["loss"]))
    np.testing.assert_allclose(two, one, rtol=1e-4)


def test_a_process_id_missing_or_out_of_range_is_one_line(monkeypatch):
    from eegpt import sharding
    from eegpt.errors import EEGInputError

    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.delenv("JAX_PROCESS_ID", raising=False)
    with pytest.raises(EEGInputError, match="JAX_PROCESS_ID"):
        sharding.initialize_distributed()
    monkeypatch.setenv("JAX_PROCESS_ID", "2")
    with pytest.raises(EEGInputError, match="choose 0 to 1"):
        sharding.initialize_distributed()


def test_sums_cross_processes_as_float32_pairs_without_losing_float64_precision():
    from eegpt.sharding import float32_pair

    values = np.array([123456789.123456, 1e-3 + 1e-11, -98765.4321, 3.0])
    pair = float32_pair(values)
    assert pair.dtype == np.float32 and pair.shape == (2, 4)
    assert abs(float(np.float32(values[0])) - values[0]) > 1  # float32 alone loses the units
    np.testing.assert_allclose(pair.astype(np.float64).sum(0), values, rtol=1e-13)
