import json
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from eegpt.benchmark import benchmark
from eegpt.protocols import folds
from eegpt.cli import main
from eegpt.errors import EEGInputError

from conftest import shared


def test_eegmat_protocol_scores_on_val_subjects_when_31_35_are_absent(stores):
    s = stores["mw"]
    [(_, split, what)] = folds("eegmat", s)
    np.testing.assert_array_equal(split, s.split_of)  # the card's own split when a test part exists
    no_test = s.with_splits(np.where(s.split_of == "test", "unassigned", s.split_of))
    [(_, split, what)] = folds("eegmat", no_test)
    assert set(split) == {"train", "test", "unassigned"} and "absent" in what
    assert ((split == "test") == (s.split_of == "val")).all()


class _Fake:
    def __init__(self, files):
        self.file_of, self.subject_of, self.path = np.asarray(files), np.asarray([f[1:4] for f in files]), "store"

    def __len__(self):
        return len(self.file_of)


@pytest.mark.parametrize("last", [11, 23])
def test_eegmmidb_cross_subject_protocol_assigns_subjects_and_imagery_runs(last):
    store = _Fake([f"S{s:03d}/S{s:03d}R{r:02d}.edf" for s in range(1, last + 1) for r in (4, 6, 8, 10, 12, 14)])
    [(_, split, what)] = folds("eegmmidb", store)
    subject = store.subject_of.astype(int)
    run = np.asarray([int(f[-6:-4]) for f in store.file_of])
    assert (split[~np.isin(run, (4, 8, 12))] == "unassigned").all()  # both fists / feet are not this task
    fists = np.isin(run, (4, 8, 12))
    assert set(subject[fists & (split == "train")]) == set(range(1, 9))
    if last == 23:  # the held-out subjects are scored, S009-S011 select
        assert set(subject[split == "val"]) == {9, 10, 11} and set(subject[split == "test"]) == set(range(12, 24))
    else:  # without them: score on S009-S011, select on nothing
        assert not (split == "val").any() and set(subject[split == "test"]) == {9, 10, 11} and "absent" in what


@pytest.mark.parametrize("name", ["n170", "p300"])
def test_leave_one_subject_out_scores_every_subject_once(stores, name):
    s = stores["cm"]
    got = folds(name, s)
    assert len(got) == len(set(s.subject_of))
    tested = np.stack([split == "test" for _, split, _ in got])
    assert (tested.sum(0) == 1).all() and all((split != "val").all() for _, split, _ in got)


@pytest.mark.slow  # about a minute on 2 cores
def test_eegmmidb_s001_protocol_end_to_end_with_seeds_and_a_usable_model(tmp_path):
    from eegpt.baseline import fit_predict
    from eegpt.model import load
    from eegpt.predict import predict

    source = shared("MI", "eegmmidb")
    returned = benchmark("eegmmidb-s001", source, tmp_path, preset="tiny", pretrain_steps=2, finetune_steps=2,
                         seeds=(0, 1), specialists=False, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert returned["summary"] == saved["summary"]
    assert saved["split"].startswith("S001: train on runs 4 and 8") and saved["seeds"] == [0, 1]
    assert [(x["seed"], x["fold"]) for x in saved["runs"]] == [(0, "S001"), (1, "S001")]
    for run in saved["runs"]:
        assert set(run["models"]) == {"EEGPT", "band_power", "csp_lda", "riemann"}
        assert run["models"]["EEGPT"]["n"] == run["models"]["csp_lda"]["n"] == 15  # run 12: 15 fist trials
    from eegpt.store import Store

    s = Store(tmp_path / "store").with_splits(folds("eegmmidb-s001", Store(tmp_path / "store"))[0][1])
    truth = s.labels[s.indices("test")]  # run 12's imagined left / right fists, from the store
    present = np.unique(s.labels[s.indices("train")])
    assert len(present) == 2 and set(truth) <= set(present)

    def two_class(probs):  # the protocol's two classes: the more likely of them, by hand
        return present[np.argmax(probs[:, present], 1)]

    # each seed's EEGPT figure is its saved model's predictions on run 12, scored by scikit-learn
    per_seed = []
    for seed in (0, 1):
        model = load(tmp_path / f"seed-{seed}" / "S001" / "finetune")
        per_seed.append(balanced_accuracy_score(truth, two_class(model.run(s, "test")["probs"])))
        run = saved["runs"][seed]["models"]["EEGPT"]
        assert run["balanced_accuracy"] == pytest.approx(per_seed[-1])
        tuned = json.loads((tmp_path / f"seed-{seed}" / "S001" / "finetune" / "finetune.json").read_text())
        assert run["kept"]["step"] == tuned["best_step"] and saved["kept"][f"seed-{seed}/S001"] == run["kept"]
    assert saved["summary"]["EEGPT"]["balanced_accuracy"]["mean"] == pytest.approx(np.mean(per_seed))
    # a peer's figure is the peer fitted on the protocol's windows, nothing else
    probs, _, _ = fit_predict("csp_lda", s, s.indices("train"), s.indices("test"))
    assert saved["summary"]["csp_lda"]["balanced_accuracy"]["mean"] == pytest.approx(
        balanced_accuracy_score(truth, two_class(probs)))
    # each fold's scores are kept: a rerun (an interrupted one, or more seeds) reuses them as they are
    kept = {f: f.stat().st_mtime_ns for f in tmp_path.glob("seed-*/S001/scores.json")}
    assert len(kept) == 2
    again = benchmark("eegmmidb-s001", source, tmp_path, preset="tiny", pretrain_steps=2, finetune_steps=2,
                      seeds=(0, 1), specialists=False, progress=False)
    assert again["runs"] == saved["runs"] and {f: f.stat().st_mtime_ns for f in kept} == kept
    # the benchmark's model answers about a real recording and says what it was trained on
    p = predict(model, source / "S001R12.edf")
    assert "eegmmidb" in p.trained_on and "synthetic" not in p.trained_on.lower()
    assert p.probs.shape[1] == 4 and len(p.probs) > 0


@pytest.mark.slow  # each network trained as the peers are: about a minute on 2 cores
def test_specialist_networks_learn_their_training_windows(stores):
    pytest.importorskip("braindecode", reason="the specialist peers need the peers extra (pip install -e '.[peers]')")
    from eegpt.baseline import SPECIALISTS, fit_predict
    from eegpt.metrics import classification

    s = stores["cm"]
    train = s.indices("train")
    for name, spec in SPECIALISTS.items():
        probs, labels, chosen = fit_predict(name, s, train, train)
        assert chosen == {"epoch": spec.epochs}  # nothing to select on: the last epoch
        assert classification(labels, probs, len(s.classes))["balanced_accuracy"] > 0.65, name  # 160 windows


def test_specialist_networks_keep_the_epoch_chosen_on_validation_windows(stores):
    pytest.importorskip("braindecode", reason="the specialist peers need the peers extra (pip install -e '.[peers]')")
    from dataclasses import replace

    from eegpt.baseline import SPECIALISTS, store_arrays, train_specialist

    s = stores["cm"]
    x_tr, y_tr, _ = store_arrays(s, s.indices("train"))
    x_val, y_val, _ = store_arrays(s, s.indices("val"))
    for name, spec in SPECIALISTS.items():
        # scored on the validation windows themselves: the network kept must be the best epoch's
        probs, chosen, history = train_specialist(replace(spec, epochs=4), s.index["sfreq"], x_tr, y_tr, x_val, y_val,
                                                  x_val, len(s.classes), seed=0)
        best = int(np.argmax(history["valid_bacc"]))
        assert chosen["epoch"] == best + 1 and len(history["valid_bacc"]) == 4
        assert balanced_accuracy_score(y_val, probs.argmax(1)) == pytest.approx(history["valid_bacc"][best])


def test_benchmark_refuses_unknown_names_and_empty_folders(tmp_path):
    with pytest.raises(EEGInputError, match="unknown benchmark"):
        benchmark("nope", tmp_path, tmp_path / "w")
    with pytest.raises(EEGInputError, match="different seeds"):
        benchmark("eegmat", tmp_path, tmp_path / "w", seeds=(0, 0))
    assert main(["benchmark", "eegmat", "--source", str(tmp_path), "--workdir", str(tmp_path / "w")]) == 2


def _demo_report(seed, model, peers):
    """A demo report's scores: ``model`` and ``peers`` give each task's balanced accuracy."""
    return {"seconds": 1.0, "tasks": {t: {"balanced_accuracy": a, "chance": 0.5,
                                          "baselines": {n: {"balanced_accuracy": p[t]} for n, p in peers.items()}}
                                      for t, a in model.items()}}


def test_demo_over_seeds_runs_each_seed_apart_and_checks_the_targets_on_the_means(tmp_path, monkeypatch, capsys):
    from dataclasses import asdict

    import eegpt.demo as demo_module
    from eegpt.baseline import SPECIALISTS

    scores = {0: ({"ER": 0.80, "CM": 0.70}, {"band_power": {"ER": 0.78, "CM": 0.60}, "eegnet": {"ER": 0.50, "CM": 0.76}}),
              1: ({"ER": 0.84, "CM": 0.72}, {"band_power": {"ER": 0.82, "CM": 0.62}, "eegnet": {"ER": 0.52, "CM": 0.70}}),
              2: ({"ER": 0.82, "CM": 0.74}, {"band_power": {"ER": 0.80, "CM": 0.64}, "eegnet": {"ER": 0.48, "CM": 0.79}})}
    seen = []

    def fake_demo(workdir, quick, progress, seed, plan=None, specialists=None):
        seen.append((workdir, seed))
        return _demo_report(seed, *scores[seed])

    monkeypatch.setattr(demo_module, "demo", fake_demo)
    assert main(["demo", "--workdir", str(tmp_path / "w"), "--quick", "--seeds", "0", "1", "2", "--quiet"]) == 0
    assert seen == [(tmp_path / "w" / f"seed-{s}", s) for s in (0, 1, 2)]
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    er, cm = summary["tasks"]["ER"], summary["tasks"]["CM"]
    assert er["model"]["mean"] == pytest.approx(0.82) and er["model"]["runs"] == [0.80, 0.84, 0.82]
    assert er["best_peer"] == "band_power" and er["gap"] == pytest.approx(0.02)
    # the best peer is chosen on its mean over seeds (EEGNet, 0.75), not seed by seed
    assert cm["best_peer"] == "eegnet" and cm["gap"] == pytest.approx(0.72 - 0.75)
    assert summary["target"] == {"task_margin": 0.10, "mean": False, "worst_task": "CM", "met": True}
    assert "met (closest task: CM, -0.030)" in capsys.readouterr().out
    # the full demo's rule is stricter: no task more than 0.03 below, and the mean at or above the peers'
    full = demo_module.summarize_seeds({s: _demo_report(s, *scores[s]) for s in scores}, "full")
    assert full["mean"] == pytest.approx(0.77) and full["best_peers_mean"] == pytest.approx(0.775)
    assert not full["target"]["met"]
    # a finished seed is kept: running again with one more seed runs only that one
    for seed in (0, 1, 2):
        (tmp_path / "w" / f"seed-{seed}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "w" / f"seed-{seed}" / "report.json").write_text(json.dumps({**_demo_report(seed, *scores[seed]),
                                                                                 "plan": "quick"}))
    scores[3] = scores[0]
    seen.clear()
    assert main(["demo", "--workdir", str(tmp_path / "w"), "--quick", "--seeds", "0", "1", "2", "3", "--quiet"]) == 0
    assert seen == [(tmp_path / "w" / "seed-3", 3)]
    assert json.loads((tmp_path / "w" / "summary.json").read_text())["seeds"] == [0, 1, 2, 3]
    # ... unless its networks were trained with another recipe than today's: that seed runs again
    stale = {**_demo_report(1, *scores[1]), "plan": "quick", "specialists": True,
             "recipes": {name: {**asdict(spec), "epochs": spec.epochs // 2} for name, spec in SPECIALISTS.items()}}
    (tmp_path / "w" / "seed-1" / "report.json").write_text(json.dumps(stale))
    seen.clear()
    assert main(["demo", "--workdir", str(tmp_path / "w"), "--quick", "--seeds", "0", "1", "--quiet"]) == 0
    assert seen == [(tmp_path / "w" / "seed-1", 1)]
    assert main(["demo", "--workdir", str(tmp_path / "bad"), "--seeds", "1", "1"]) == 2
    assert "seeds must be distinct" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_the_riemannian_peer_chooses_its_band_on_validation():
    """Two classes told apart only by the sign of a 10-Hz rhythm shared by two electrodes, under
    large independent 2-Hz drifts: the broadband covariance is swamped by the drifts, the 8-30 Hz
    one is not, and the validation windows choose it."""
    from eegpt.baseline import GRID, make, select_on_val

    rng = np.random.default_rng(0)
    t = np.arange(512) / 256

    def windows(n, sign):
        x = 0.3 * rng.standard_normal((n, 6, 512))
        x += rng.uniform(5, 20, (n, 6, 1)) * np.sin(2 * np.pi * 2 * t + rng.uniform(0, 2 * np.pi, (n, 6, 1)))
        rhythm = np.sin(2 * np.pi * 10 * t + rng.uniform(0, 2 * np.pi, (n, 1)))
        x[:, 0] += rhythm
        x[:, 1] += sign * rhythm
        return x

    def split(n):
        return np.concatenate([windows(n, -1), windows(n, 1)]), np.repeat([0, 1], n)

    (x, y), (x_val, y_val), (x_te, y_te) = split(60), split(30), split(30)
    model, chosen = select_on_val(lambda: make("riemann", 256.0), GRID["riemann"], x, y, x_val, y_val)
    assert chosen["covariances__band"] == "8-30"
    assert balanced_accuracy_score(y_te, model.predict(x_te)) > 0.95
    broadband = make("riemann", 256.0).set_params(covariances__band="broadband").fit(x, y)
    assert balanced_accuracy_score(y_te, broadband.predict(x_te)) < 0.8


def test_fewer_training_subjects_keeps_k_of_them_drawn_per_seed():
    from eegpt.benchmark import fewer_training_subjects

    subject = np.repeat(np.arange(10), 3)
    split = np.where(subject < 6, "train", np.where(subject < 8, "val", "test"))
    assert fewer_training_subjects(split, subject, None, 0) is split
    draws = []
    for seed in (0, 1, 2):
        out = fewer_training_subjects(split, subject, 2, seed)
        kept = np.unique(subject[out == "train"])
        assert len(kept) == 2 and set(kept) <= set(range(6))
        assert ((out == "unassigned") == ((split == "train") & ~np.isin(subject, kept))).all()
        assert (out[split != "train"] == split[split != "train"]).all()  # validation and scored subjects untouched
        assert np.array_equal(out, fewer_training_subjects(split, subject, 2, seed))  # the seed decides
        draws.append(tuple(kept))
    assert len(set(draws)) > 1
    for k in (0, 7):
        with pytest.raises(EEGInputError, match=f"--train-subjects {k}: choose 1 to 6"):
            fewer_training_subjects(split, subject, k, 0)


def test_euclidean_alignment_whitens_each_subject_at_its_own_power(stores):
    from eegpt.features import euclidean_alignment

    s = stores["mi"]
    aligners = euclidean_alignment(s)
    assert set(aligners) == set(np.unique(s.subject_of))
    aligned = s.with_alignment(aligners)
    for subject in aligners:
        where = np.flatnonzero(s.subject_of == subject)
        before = np.mean([np.cov(s[i].x) for i in where], axis=0)
        after = np.mean([np.cov(aligned[i].x) for i in where], axis=0)
        # the mean covariance becomes the identity times the subject's mean variance
        np.testing.assert_allclose(after, np.eye(len(after)) * np.trace(before) / len(before), atol=1e-3 * after.max())
    assert aligned.with_splits(s.split_of).aligners is aligners  # a protocol's splits keep the alignment
    assert s.aligners is None  # the store itself reads its windows as stored


def test_aligned_benchmark_gives_every_reader_the_aligned_windows(tmp_path):
    from eegpt.baseline import fit_predict
    from eegpt.features import euclidean_alignment
    from eegpt.store import Store

    source = shared("MI", "eegmmidb")
    saved = benchmark("eegmmidb-s001", source, tmp_path, preset="tiny", pretrain_steps=2, finetune_steps=2,
                      seeds=(0,), specialists=False, align_subjects=True, progress=False)
    assert saved["subject_alignment"].startswith("Euclidean alignment")
    store = Store(tmp_path / "store")
    s = store.with_alignment(euclidean_alignment(store)).with_splits(folds("eegmmidb-s001", store)[0][1])
    truth = s.labels[s.indices("test")]
    present = np.unique(s.labels[s.indices("train")])
    probs, _, _ = fit_predict("csp_lda", s, s.indices("train"), s.indices("test"))
    assert saved["summary"]["csp_lda"]["balanced_accuracy"]["mean"] == pytest.approx(
        balanced_accuracy_score(truth, present[np.argmax(probs[:, present], 1)]))
