"""NeuroLM's path: the VQ neural tokenizer (``eegpt tokenizer``) and next-code pretraining
(``eegpt pretrain --tokens vq:DIR``)."""

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from eegpt.cli import main
from eegpt.finetune import load_ete
from eegpt.neural_tokenizer import TokenizerTrainConfig, load_tokenizer, train_tokenizer
from eegpt.train import PretrainConfig, pretrain
from ete.model import ETEConfig
from ete.tokenizer import TokenizerConfig, VQTokenizer, code_usage, restart_dead_codes, reverse_gradient

from conftest import on_eight_devices

SMALL = dict(preset="tiny", batch_size=32, seq_tokens=4, lr=3e-3, warmup=5, codes=64, code_dim=8, decoder_hidden=64,
             restart_below=0.05, eval_batches=5, log_every=5)


@pytest.fixture(scope="module")
def mw(stores):
    return stores["mw"]


@pytest.fixture(scope="module")
def ss(stores):
    return stores["ss"]


@pytest.fixture(scope="module")
def tokenizer_run(ss, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokenizer")
    m = train_tokenizer(TokenizerTrainConfig(steps=160, restart_every=20, ckpt_every=80, **SMALL), [ss], out,
                        progress=False, track=False)
    return out, m


def test_code_usage_is_the_perplexity_of_the_histogram():
    # four codes used 2, 1, 1, 0 times: entropy of (1/2, 1/4, 1/4)
    perplexity, live = code_usage(jnp.array([0, 0, 1, 2]), 4)
    assert live == 3
    assert float(perplexity) == pytest.approx(np.exp(-(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))), rel=1e-5)


def test_dead_codes_move_onto_encoder_vectors_and_live_ones_stay():
    book = jnp.eye(4, 3)
    z = jnp.full((5, 3), 7.0)
    new, restarted = restart_dead_codes(book, jnp.array([5.0, 0.0, 3.0, 0.5]), z, jax.random.key(0), 1.0)
    assert int(restarted) == 2
    np.testing.assert_array_equal(np.asarray(new)[[0, 2]], np.eye(4, 3)[[0, 2]])
    np.testing.assert_array_equal(np.asarray(new)[[1, 3]], np.full((2, 3), 7.0))


def test_gradient_reversal_negates_and_scales_the_gradient():
    g = jax.grad(lambda x: jnp.sum(3.0 * reverse_gradient(x, 0.5)))(jnp.ones(4))
    np.testing.assert_allclose(np.asarray(g), -1.5)


def test_tokenizer_rebuilds_held_out_tokens_and_keeps_its_codebook_in_use(tokenizer_run):
    out, m = tokenizer_run
    # The held-out subject's tokens rebuilt from their codes alone, beside a code that carries
    # nothing (zero; the training tokens' mean spectrum): measured 0.25 and 0.29 of those. Sleep
    # stages change the spectrum within a subject; where one subject's spectrum stays the same
    # (this corpus's MW, one training subject) the mean spectrum is all there is to learn.
    assert m["time_mse"] < 0.6 * m["time_zero_mse"]
    assert m["amplitude_mse"] < 0.6 * m["amplitude_mean_mse"]
    assert m["live_codes"] >= 24 and m["perplexity"] > 8  # of 64 codes
    assert json.loads((out / "metrics.json").read_text())["live_codes"] == m["live_codes"]
    tok = load_tokenizer(out)
    x = jax.random.normal(jax.random.key(1), (3, 4, tok.cfg.encoder.token_len)) * 0.1
    codes = tok.encode(x, jnp.array([1, 2, 3]))
    assert codes.shape == (3, 4) and codes.dtype == jnp.int32 and int(codes.max()) < 64


def test_without_restarts_the_codebook_collapses(ss, tmp_path, tokenizer_run):
    m = train_tokenizer(TokenizerTrainConfig(steps=60, restart_every=1000, ckpt_every=60, **SMALL), [ss], tmp_path,
                        progress=False, track=False)
    assert m["live_codes"] < tokenizer_run[1]["live_codes"] / 3


def test_tokenizer_resumes_with_more_steps_and_refuses_another_shape(mw, tmp_path):
    cfg = TokenizerTrainConfig(steps=10, restart_every=5, ckpt_every=5, **SMALL)
    assert train_tokenizer(cfg, [mw], tmp_path, progress=False, track=False)["step"] == 10
    more = train_tokenizer(TokenizerTrainConfig(steps=15, restart_every=5, ckpt_every=5, **SMALL), [mw], tmp_path,
                           progress=False, track=False)
    assert more["step"] == 15 and more["resumed_from"] == 10
    other = dict(SMALL, codes=32)
    assert main(["tokenizer", "--data", str(mw.path), "--workdir", str(tmp_path),
                 *[f"--{k.replace('_', '-')}={v}" for k, v in other.items()], "--steps", "20", "--quiet"]) == 2


def test_text_alignment_moves_the_codes_towards_the_text_embeddings():
    """Only the domain loss, through the gradient reversal: the classifier learns to tell EEG codes
    from text, and the projection of the codes is pushed to where the text embeddings are."""
    cfg = TokenizerConfig(ETEConfig(d_model=16, layers=1, heads=2, token_len=32, objective="mae", summary_loss=0.0),
                          codes=16, code_dim=8, decoder_hidden=32, align=1.0, text_dim=8)
    model = VQTokenizer(cfg, rngs=nnx.Rngs(0))
    codes = jax.random.normal(jax.random.key(1), (64, 8))
    text = jax.random.normal(jax.random.key(2), (64, 8)) + 3.0  # text lives elsewhere
    labels = jnp.concatenate([jnp.ones(64), jnp.zeros(64)])
    gap = lambda m: float(jnp.linalg.norm(m.to_text(codes).mean(0) - text.mean(0)))  # noqa: E731
    before = gap(model)
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt):
        loss_fn = lambda m: optax.sigmoid_binary_cross_entropy(m.domain_logits(codes, text, 1.0), labels).mean()  # noqa: E731
        opt.update(model, nnx.grad(loss_fn)(model))

    for _ in range(300):
        step(model, opt)
    assert gap(model) < 0.5 * before


def test_next_code_pretraining_beats_the_code_frequencies_and_its_features_load(ss, tmp_path, tokenizer_run):
    cfg = PretrainConfig(preset="tiny", steps=60, batch_size=32, seq_tokens=4, lr=3e-3, warmup=5, eval_batches=5,
                         targets=f"vq:{tokenizer_run[0]}")
    m = pretrain(cfg, [ss], tmp_path, progress=False, track=False)
    assert m["val_ce"] < m["unigram_ce"] and m["val_accuracy"] > m["repeat_accuracy"]
    assert m["codes"] == 64 and m["targets"] == cfg.targets
    graphdef, params, loaded = load_ete(tmp_path)  # loads without the tokenizer: the head's size is in the config
    assert dict(loaded.model)["codes"] == 64
    assert nnx.merge(graphdef, params).head.kernel.shape[-1] == 64


@pytest.mark.parametrize("argv, says", [
    (["--tokens", "codes.npz"], "give vq:DIR"),
    (["--tokens", "vq:/nowhere/tokenizer"], "/nowhere/tokenizer: no tokenizer here"),
    (["--tokens", "vq:DIR", "--objective", "mae"], "with --objective ar"),
])
def test_bad_code_targets_are_one_line(mw, tmp_path, capsys, argv, says):
    assert main(["pretrain", "--data", str(mw.path), "--workdir", str(tmp_path / "run"), "--preset", "tiny",
                 "--steps", "2", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err


def test_alignment_without_a_text_model_is_one_line(mw, tmp_path, capsys):
    assert main(["tokenizer", "--data", str(mw.path), "--workdir", str(tmp_path / "run"), "--preset", "tiny",
                 "--align", "0.5", "--steps", "2"]) == 2
    assert "--align needs --align-with" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_next_code_pretraining_records_the_subjects_its_tokenizer_read(ss, tmp_path, tokenizer_run):
    """The benchmarks' leakage check reads ``subjects_seen``: the tokenizer's subjects are in it."""
    tokenizer_dir = tmp_path / "tokenizer"
    import shutil

    shutil.copytree(tokenizer_run[0], tokenizer_dir)
    m = json.loads((tokenizer_dir / "metrics.json").read_text())
    m["subjects_seen"] = {"eegmat": ["26"]}  # as if the tokenizer had read a subject EEGMAT scores
    (tokenizer_dir / "metrics.json").write_text(json.dumps(m))
    cfg = PretrainConfig(preset="tiny", steps=2, batch_size=32, seq_tokens=4, eval_batches=1,
                         targets=f"vq:{tokenizer_dir}")
    seen = pretrain(cfg, [ss], tmp_path / "ete", progress=False, track=False)["subjects_seen"]
    assert seen["eegmat"] == ["26"] and seen[ss.name]


SHARDED = textwrap.dedent("""
    import os, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, numpy as np
    from eegpt.neural_tokenizer import TokenizerTrainConfig, init_state, make_train_step
    from eegpt import sharding
    from ete.model import VOCAB_SIZE
    cfg = TokenizerTrainConfig(preset="tiny", batch_size=16, seq_tokens=4, codes=64, code_dim=8, decoder_hidden=32,
                               restart_every=2)
    rng = np.random.default_rng(0)
    batch = {"tokens_BxNxP": rng.standard_normal((16, 4, 64)).astype(np.float32) * 0.1,
             "electrode_B": rng.integers(0, VOCAB_SIZE, 16).astype(np.int32)}
    out = {}
    for name, (data, fsdp) in {"single": (1, 1), "sharded": (2, 4)}.items():
        devices = jax.devices()[: data * fsdp]
        mesh = jax.make_mesh((data, fsdp), ("data", "fsdp"), devices=devices,
                             axis_types=(jax.sharding.AxisType.Auto,) * 2)
        graphdef, state, tx, schedule = init_state(cfg)
        sh = sharding.state_shardings(state, mesh)
        state = jax.device_put(state, sh)
        step = make_train_step(cfg, graphdef, tx, schedule, None, sh, sharding.batch_sharding(mesh))
        losses = []
        for _ in range(4):  # a dead-code restart at steps 2 and 4
            state, m = step(state, sharding.global_batch(batch, mesh))
            losses.append(float(m["loss"]))
        out[name] = {"losses": losses, "n_devices": len(devices)}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_sharded_tokenizer_step_matches_single_device():
    out = on_eight_devices(SHARDED)
    assert out["sharded"]["n_devices"] == 8
    np.testing.assert_allclose(out["sharded"]["losses"], out["single"]["losses"], rtol=1e-4)


@pytest.mark.parametrize("argv, says", [
    (["--codes", "1"], "--codes 1: a codebook needs at least 2 codes"),
    (["--beta", "-1"], "weights must be >= 0"),
    (["--recipe", "foundation"], "--recipe foundation reads --source DATA"),
    (["--source", "somewhere"], "give --data STORE"),
])
def test_bad_tokenizer_arguments_are_one_line(mw, tmp_path, capsys, argv, says):
    data = [] if "--source" in argv else ["--data", str(mw.path)]  # the recipe reads --source, never --data
    assert main(["tokenizer", *data, "--workdir", str(tmp_path / "run"), "--preset", "tiny", "--steps", "2", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err
    assert not (tmp_path / "run").exists()


def test_tokenizer_aligns_to_a_saved_copilot_decoders_embeddings(ss, tmp_path):
    from eegpt.copilot import corpus as CO
    from eegpt.copilot import decoder as D

    tok = D.train_tokenizer(CO.make_corpus(60, seed=1), 400)
    cfg = D.DecoderConfig(vocab=tok.get_vocab_size(), d_model=24, layers=1, heads=2, head_dim=8, ffn=32, max_len=160,
                          prefix=2, eeg_features=8)
    D.save(tmp_path / "copilot", D.Decoder(cfg, rngs=nnx.Rngs(0)), tok)
    m = train_tokenizer(TokenizerTrainConfig(steps=4, restart_every=2, ckpt_every=4, align=0.5, **dict(SMALL, eval_batches=1)),
                        [ss], tmp_path / "run", align_with=tmp_path / "copilot", progress=False, track=False)
    assert m["aligned_with"] == str(tmp_path / "copilot")
    aligned = load_tokenizer(tmp_path / "run")
    assert aligned.cfg.align == 0.5 and aligned.cfg.text_dim == 24  # the decoder's embedding width
    assert aligned.to_text.kernel.shape == (8, 24)
