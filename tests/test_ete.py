import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eegpt.presets import PRESETS, counts
from ete import ETE, ETEConfig, features

TINY = ETEConfig(d_model=32, layers=2, heads=2, token_len=16)


def _model(**kw):
    return ETE(TINY.replace(**kw), rngs=nnx.Rngs(0))


def _pred(m, *args, **kw):
    """The model's predictions as a jitted pure function of the tokens."""
    graphdef, state = nnx.split(m)
    return jax.jit(lambda x: nnx.merge(graphdef, state)(x, *args, **kw)["pred"])


def test_shapes_electrode_mode():
    m = _model()
    x = jax.random.normal(jax.random.key(0), (3, 5, 16))
    out = nnx.jit(lambda m, x, ids: m(x, ids))(m, x, jnp.array([0, 41, 373]))
    assert out["pred"].shape == (3, 5, 16) and out["feature"].shape == (3, 32)
    assert np.isfinite(np.asarray(out["pred"])).all()


@pytest.mark.parametrize("mode", ["electrode", "multichannel"])
def test_causality_gradient_to_later_tokens_is_exactly_zero(mode):
    m = _model(mode=mode)
    n = 5
    if mode == "electrode":
        x = jax.random.normal(jax.random.key(1), (2, n, 16))
        args = (jnp.array([3, 7]),)
        tok_axis = 1
    else:
        x = jax.random.normal(jax.random.key(1), (2, 3, n, 16))
        args = (jnp.array([[3, 7, 9], [1, 2, 4]]), jnp.array([[True, True, True], [True, True, False]]))
        tok_axis = 2
    f = _pred(m, *args)
    # one gradient per step (jacrev under jit is miscompiled by XLA:CPU's YNNPACK fusions in
    # jax 0.10.2: it reports dependences across the batch that eager mode does not have)
    grad_t = jax.jit(jax.grad(lambda x, t: jnp.sum(jnp.take(f(x), t, axis=tok_axis))), static_argnums=1)
    for t in range(n):
        g = np.asarray(grad_t(x, t))
        later = np.take(g, np.arange(t, n), axis=tok_axis)
        earlier = np.take(g, np.arange(0, t), axis=tok_axis)
        assert np.all(later == 0.0), f"prediction {t} depends on tokens >= {t}"
        if t > 0:
            assert np.abs(earlier).sum() > 0  # and it does use the past


def test_multichannel_sees_other_electrodes_of_earlier_steps_not_padding():
    m = _model(mode="multichannel")
    x = jax.random.normal(jax.random.key(2), (1, 3, 4, 16))
    ids = jnp.array([[3, 7, 9]])
    mask = jnp.array([[True, True, False]])
    f = _pred(m, ids, mask)
    g = jax.grad(lambda x: f(x)[0, 0, 2].sum())(x)
    assert np.abs(np.asarray(g[0, 1, :2])).sum() > 0  # electrode 1, earlier steps: seen
    assert np.all(np.asarray(g[0, 2]) == 0)           # padded electrode: never seen


def test_mae_reconstructs_hidden_tokens_bidirectionally():
    m = _model(objective="mae")
    x = jax.random.normal(jax.random.key(3), (2, 4, 16))
    masked = jnp.array([[False, True, False, False], [True, False, False, True]])
    f = _pred(m, jnp.array([1, 2]), masked=masked)
    g = jax.grad(lambda x: f(x)[:, 1].sum())(x)
    assert np.abs(np.asarray(g[0, 3])).sum() > 0   # sees the future
    assert np.all(np.asarray(g[0, 1]) == 0)         # not the token it rebuilds


def test_jit_and_eager_agree():
    m = _model()
    x = jax.random.normal(jax.random.key(4), (4, 6, 16))
    ids = jnp.arange(4)
    eager = m(x, ids)["pred"]
    jitted = nnx.jit(lambda m, x, ids: m(x, ids)["pred"])(m, x, ids)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), rtol=1e-5, atol=1e-5)


def test_features_on_graph_batches_mask_padding():
    m = _model()
    x = jax.random.normal(jax.random.key(5), (2, 3, 4, 16))
    feat, hidden = nnx.jit(features)(m, x, jnp.array([[1, 2, 3], [4, 5, 0]]), jnp.array([[1, 1, 1], [1, 1, 0]], bool))
    assert feat.shape == (2, 3, 32) and hidden.shape == (2, 3, 4, 32)
    assert np.all(np.asarray(feat[1, 2]) == 0)
    single = nnx.jit(lambda m, x, ids: m(x, ids))(m, x[0, 1][None], jnp.array([2]))["feature"][0]
    np.testing.assert_allclose(np.asarray(feat[0, 1]), np.asarray(single), rtol=1e-5, atol=1e-6)


def test_presets_match_eegpt_within_5_percent():
    for name in ("base", "large", "huge", "giant"):
        c = counts(name)
        assert abs(c["relative_difference"]) < 0.05, (name, c)
        assert c["params"] == c["ete_params"] + c["teg_params"]
    assert set(PRESETS) >= {"tiny", "base", "large", "huge", "giant"}


def test_presets_command_json(capsys):
    import json

    from eegpt.cli import main

    assert main(["presets", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) >= {"base", "large", "huge", "giant"}
    for name in table:
        assert {"params", "ete_params", "teg_params"} <= set(table[name])
    assert table["giant"]["params"] > 1e9


def test_summary_follows_the_last_real_token_of_padded_sequences():
    m = _model()
    x = jax.random.normal(jax.random.key(6), (2, 6, 16))
    f = nnx.jit(lambda m, x, ids, n: m(x, ids, n_valid_B=n)["feature"])
    padded = x.at[1, 3:].set(0.0)
    short = nnx.jit(lambda m, x, ids: m(x, ids)["feature"])(m, x[1:, :3], jnp.array([5]))
    both = f(m, padded, jnp.array([4, 5]), jnp.array([6, 3]))
    np.testing.assert_allclose(np.asarray(both[1]), np.asarray(short[0]), rtol=1e-4, atol=1e-5)
    full = nnx.jit(lambda m, x, ids: m(x, ids)["feature"])(m, x[:1], jnp.array([4]))
    np.testing.assert_allclose(np.asarray(both[0]), np.asarray(full[0]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("objective", ["ar", "mae"])
def test_summary_feature_alone_equals_the_full_pass(objective):
    """The graph's path computes only the summary position in the last block; same feature, and
    the same gradient into the encoder (it is what fine-tuning a trainable ETE differentiates)."""
    m = _model(objective=objective)
    x = jax.random.normal(jax.random.key(7), (3, 5, 16))
    ids, n = jnp.array([4, 5, 6]), jnp.array([5, 2, 4])
    full = nnx.jit(lambda m, x: m(x, ids, n_valid_B=n)["feature"])(m, x)
    alone = nnx.jit(lambda m, x: m.summary_feature(x, ids, n))(m, x)
    np.testing.assert_allclose(np.asarray(alone), np.asarray(full), rtol=1e-5, atol=1e-6)
    graphdef, state = nnx.split(m)
    # a fixed random projection of the feature, not its squared norm: the feature is layer-normed, so
    # its squared norm barely depends on the parameters and its gradients are float32 rounding
    r = jax.random.normal(jax.random.key(8), full.shape)
    grads = [jax.jit(jax.grad(lambda st: jnp.sum(f(nnx.merge(graphdef, st)) * r)))(state) for f in
             (lambda m: m(x, ids, n_valid_B=n)["feature"], lambda m: m.summary_feature(x, ids, n))]
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads[0])) > 1.0  # gradients, not rounding
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
        # float32 rounding is relative to each parameter's largest gradient (measured: under 1e-6 of it)
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * np.abs(a).max())
