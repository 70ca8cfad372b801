import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eegpt.electrodes import ID, positions
from teg import TEG, TEGConfig, electrode_edges

CFG = TEGConfig(d_model=32, layers=2, heads=4, heads_classes=(("mw", 2), ("ss", 5)))


def _batch(seed=0, e_max=5):
    rng = np.random.default_rng(seed)
    ids = np.array([[ID[n] for n in ("Fp1", "Fz", "Cz", "Pz", "Oz")],
                    [ID[n] for n in ("C3", "C4", "Cz", "Fz", "Fp1")]], np.int32)[:, :e_max]
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)[:, :e_max]
    feats = rng.standard_normal((2, e_max, 32)).astype(np.float32)
    return feats, ids, mask


def _run(model, feats, ids, mask, k=None):
    s, r = electrode_edges(ids, mask, positions(), k)
    graphdef, state = nnx.split(model)
    f = jax.jit(lambda st, *a: nnx.merge(graphdef, st)(*a))
    return f(state, jnp.asarray(feats), jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(s), jnp.asarray(r))


@pytest.mark.parametrize("cfg", [CFG, TEGConfig(), TEGConfig(d_model=64, layers=1, heads=2, in_features=48, pool="mean"),
                                 TEGConfig(d_model=32, layers=1, heads=2, in_features=37, readout_features=5)])
def test_param_count_formula_matches_the_module(cfg):
    abstract = nnx.eval_shape(lambda: TEG(cfg, rngs=nnx.Rngs(0)))
    n = sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
    assert n == cfg.param_count()


def test_edges_stay_inside_each_sample_with_self_loops():
    _, ids, mask = _batch()
    s, r = electrode_edges(ids, mask)
    pad = ids.size
    valid = (s != pad) & (r != pad)
    assert np.all(s[valid] // 5 == r[valid] // 5)          # never across samples
    assert mask.reshape(-1)[s[valid]].all() and mask.reshape(-1)[r[valid]].all()  # active electrodes only
    assert valid.sum() == 5 * 5 + 3 * 3                       # all pairs among active electrodes
    assert set(zip(s[valid], r[valid])) >= {(i, i) for i in (0, 1, 2, 3, 4, 5, 6, 7)}
    s_k, r_k = electrode_edges(ids, mask, positions(), k=2)
    valid_k = (s_k != pad)
    assert valid_k.sum() == 2 * 8 and np.all(s_k.reshape(2, 5, 2)[0, :, 0] == np.arange(5))  # itself first


@pytest.mark.parametrize("k", [None, 3])
def test_a_sample_does_not_depend_on_another_samples_electrodes(k):
    model = TEG(CFG, rngs=nnx.Rngs(0))
    feats, ids, mask = _batch()
    pooled, logits = _run(model, feats, ids, mask, k)
    feats2, ids2 = feats.copy(), ids.copy()
    feats2[1] = np.random.default_rng(5).standard_normal(feats2[1].shape)
    ids2[1, :3] = [ID["O1"], ID["O2"], ID["T7"]]
    pooled2, logits2 = _run(model, feats2, ids2, mask, k)
    np.testing.assert_allclose(np.asarray(pooled2[0]), np.asarray(pooled[0]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(pooled2[1]), np.asarray(pooled[1]))
    feats3 = feats.copy()
    feats3[1, 3:] = 1e3  # padded electrodes' features are never read
    np.testing.assert_allclose(np.asarray(_run(model, feats3, ids, mask, k)[0]), np.asarray(pooled), rtol=1e-5)
    assert set(logits) == {"mw", "ss"} and logits["ss"].shape == (2, 5)


@pytest.mark.parametrize("pool", ["attention", "mean"])
def test_permuting_electrodes_permutes_nothing_in_the_pooled_output(pool):
    model = TEG(TEGConfig(**{**CFG.__dict__, "pool": pool}), rngs=nnx.Rngs(1))
    feats, ids, mask = _batch()
    pooled, _ = _run(model, feats, ids, mask)
    perm = np.array([3, 0, 4, 1, 2])
    # permute sample 0 (all active) and the active part of sample 1
    f2, i2, m2 = feats.copy(), ids.copy(), mask.copy()
    f2[0], i2[0] = feats[0, perm], ids[0, perm]
    p1 = np.array([2, 0, 1, 3, 4])
    f2[1], i2[1] = feats[1, p1], ids[1, p1]
    pooled_p, _ = _run(model, f2, i2, m2)
    np.testing.assert_allclose(np.asarray(pooled_p), np.asarray(pooled), rtol=1e-4, atol=1e-5)


def test_the_jraph_gat_we_use_runs_under_jit_and_matches_eager():
    model = TEG(CFG, rngs=nnx.Rngs(2))
    feats, ids, mask = _batch()
    s, r = electrode_edges(ids, mask)
    eager = model(jnp.asarray(feats), jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(s), jnp.asarray(r))[0]
    jitted = _run(model, feats, ids, mask)[0]
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-5, atol=1e-6)
    assert np.isfinite(np.asarray(jitted)).all()


def test_bucketed_edges_give_the_same_output():
    model = TEG(CFG, rngs=nnx.Rngs(3))
    feats, ids, mask = _batch()
    s, r = electrode_edges(ids, mask, bucket=True)
    assert len(s) == 256 and (s != ids.size).sum() == 5 * 5 + 3 * 3
    graphdef, state = nnx.split(model)
    out = nnx.merge(graphdef, state)(jnp.asarray(feats), jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(s), jnp.asarray(r))[0]
    np.testing.assert_allclose(np.asarray(out), np.asarray(_run(model, feats, ids, mask)[0]), rtol=1e-5, atol=1e-6)


def test_gates_start_random_so_electrodes_differ_from_the_first_step():
    c3, c4 = ID["C3"], ID["C4"]
    random = TEG(CFG, rngs=nnx.Rngs(0)).gate.embedding[...]
    ones = TEG(TEGConfig(**{**CFG.__dict__, "gate_start": "ones"}), rngs=nnx.Rngs(0)).gate.embedding[...]
    assert not np.allclose(random[c3], random[c4]) and abs(float(random.std()) - 1.0) < 0.1
    assert np.array_equal(ones[c3], ones[c4]) and float(ones.min()) == float(ones.max()) == 1.0
    with pytest.raises(ValueError, match="gate start"):
        TEG(TEGConfig(**{**CFG.__dict__, "gate_start": "zeros"}), rngs=nnx.Rngs(0))


def test_the_electrode_readout_starts_silent_and_reads_each_electrode_apart():
    """Each head's per-electrode readout starts at zero (the graph's logits unchanged); with weights
    on one electrode's last features only, the logits move with that electrode alone."""
    feats, ids, mask = _batch()
    plain = TEG(CFG, rngs=nnx.Rngs(0))
    cfg = TEGConfig(**{**CFG.__dict__, "readout_features": 4})
    model = TEG(cfg, rngs=nnx.Rngs(0))
    base = _run(plain, feats, ids, mask)[1]
    out = _run(model, feats, ids, mask)[1]
    np.testing.assert_allclose(out["mw"], base["mw"], atol=1e-6)
    w = np.zeros(model.readout["mw"].shape, np.float32)
    w[ID["Cz"], :, 1] = 1.0
    model.readout["mw"][...] = jnp.asarray(w)
    moved = _run(model, feats, ids, mask)[1]["mw"]
    cz = [list(row).index(ID["Cz"]) for row in ids]
    expected = np.array([feats[b, cz[b], -4:].sum() for b in range(2)])
    np.testing.assert_allclose(np.asarray(moved - out["mw"])[:, 1], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(moved - out["mw"])[:, 0], 0.0, atol=1e-6)
