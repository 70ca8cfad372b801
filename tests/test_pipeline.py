import numpy as np

from eegpt.electrodes import ID
from eegpt.pipeline import Tokens, graph_batches, pretrain_batches, temperature_weights, tokenize


def test_tokenize_shapes_and_overlap():
    x = np.arange(2 * 1024, dtype=np.float32).reshape(2, 1024)
    t = tokenize(x)
    assert t.shape == (2, 4, 256) and np.array_equal(t[1, 2], x[1, 512:768])
    o = tokenize(x, Tokens(256, stride=128))
    assert o.shape == (2, 7, 256) and np.array_equal(o[0, 1], x[0, 128:384])
    assert Tokens(256).count(255) == 0


def _take(ds, n):
    it = iter(ds)
    return [next(it) for _ in range(n)]


def test_graph_batches_are_deterministic_masked_and_mixed(stores):
    parts = [stores["mw"], stores["cm"]]
    kw = dict(shard_index=0, shard_count=1)
    a = _take(graph_batches(parts, "train", 6, seed=1, **kw), 3)
    b = _take(graph_batches(parts, "train", 6, seed=1, **kw), 3)
    c = _take(graph_batches(parts, "train", 6, seed=2, **kw), 3)
    assert all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)
    assert not all(np.array_equal(x["tokens_BxExNxP"], y["tokens_BxExNxP"]) for x, y in zip(a, c))
    batch = a[0]
    assert batch["tokens_BxExNxP"].shape == (6, 19, 4, 256)
    for i in range(6):
        e = batch["mask_BxE"][i].sum()
        assert e == (19 if batch["task_B"][i] == 2 else 4)  # MW 19 electrodes, CM 4
        assert not batch["tokens_BxExNxP"][i, e:].any() and not batch["electrodes_BxE"][i, e:].any()
        assert batch["n_tokens_B"][i] == (4 if batch["task_B"][i] == 2 else 1)
    cm = batch["dataset_B"] == 1
    assert (batch["electrodes_BxE"][cm, :4] == [ID["TP9"], ID["AF7"], ID["AF8"], ID["TP10"]]).all()


def test_iterator_state_restores_exactly(stores):
    it = iter(graph_batches([stores["er"]], "train", 4, seed=0, shard_index=0, shard_count=1))
    next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(3)]
    it.set_state(state)
    again = [next(it) for _ in range(3)]
    assert all(np.array_equal(x[k], y[k]) for x, y in zip(expected, again) for k in x)


def test_hosts_get_disjoint_shares(stores):
    seen = []
    for host in range(2):
        ds = graph_batches([stores["cm"]], "train", 1, seed=0, epochs=1, drop_remainder=False,
                           shard_index=host, shard_count=2)
        seen.append({b["tokens_BxExNxP"][0].tobytes() for b in ds})
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    n_train = len(stores["cm"].indices("train"))
    assert len(seen[0]) + len(seen[1]) == n_train


def test_pretrain_batches_are_flat_electrode_sequences(stores):
    ds = pretrain_batches([stores["mi"], stores["ss"]], "train", 32, seq_tokens=4, seed=0,
                          shard_index=0, shard_count=1)
    b = _take(ds, 1)[0]
    assert set(b) == {"tokens_BxNxP", "electrode_B", "dataset_B"}
    assert b["tokens_BxNxP"].shape == (32, 4, 256)
    assert np.abs(b["tokens_BxNxP"]).sum(axis=(1, 2)).min() > 0  # no padding rows
    ss_ids = {ID["Fpz-Cz"], ID["Pz-Oz"]}
    assert all((e in ss_ids) == (d == 1) for e, d in zip(b["electrode_B"], b["dataset_B"]))


def test_temperature_weights(stores):
    parts = [stores["cm"], stores["mw"]]
    w1, w_inf = temperature_weights(parts, 1.0), temperature_weights(parts, 1e9)
    assert np.isclose(sum(w1), 1) and w1[0] > w1[1]  # CM has more windows
    assert np.allclose(w_inf, [0.5, 0.5])


def test_flat_layout_holds_the_real_electrodes_of_the_padded_one(stores):
    parts = [stores["mw"], stores["cm"]]
    kw = dict(shard_index=0, shard_count=1, seed=3)
    padded = _take(graph_batches(parts, "train", 6, **kw), 2)
    flat = _take(graph_batches(parts, "train", 6, layout="flat", **kw), 2)
    for p, f in zip(padded, flat):
        b, e = p["mask_BxE"].shape
        real = f["put_K"] < b * e
        assert real.sum() == p["mask_BxE"].sum() and f["tokens_KxNxP"].shape[0] % 64 == 0
        grid = p["tokens_BxExNxP"].reshape(b * e, *p["tokens_BxExNxP"].shape[2:])
        np.testing.assert_array_equal(f["tokens_KxNxP"][real], grid[f["put_K"][real]])
        np.testing.assert_array_equal(f["electrode_K"][real], p["electrodes_BxE"].reshape(-1)[f["put_K"][real]])
        assert not f["tokens_KxNxP"][~real].any()


def test_batch_mixing_draws_each_batch_from_one_store_by_weight(stores):
    parts = [stores["mw"], stores["cm"]]
    batches = _take(graph_batches(parts, "train", 4, weights=[0.8, 0.2], mix="batch", shard_index=0,
                                  shard_count=1), 50)
    for b in batches:
        assert len(set(b["dataset_B"].tolist())) == 1
        assert b["tokens_BxExNxP"].shape[2] == (4 if b["dataset_B"][0] == 0 else 1)  # own token count
    share = np.mean([b["dataset_B"][0] == 0 for b in batches])
    assert 0.6 < share < 0.95


def test_an_evaluation_pass_keeps_store_order_and_fills_the_last_batch(stores):
    s = stores["mw"]
    pos = s.indices("val")
    got = _take(graph_batches([s], "val", 5, epochs=1, drop_remainder=False, shuffle=False, shard_index=0,
                              shard_count=1), -(-len(pos) // 5))
    labels = np.concatenate([b["label_B"][b["real_B"]] for b in got])
    np.testing.assert_array_equal(labels, s.labels[pos])
    assert all(len(b["label_B"]) == 5 for b in got) and got[-1]["real_B"].sum() == len(pos) - 5 * (len(got) - 1)
