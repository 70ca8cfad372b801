"""The EEG-only copilot (NeuroLM's instruction tuning): the decoder reads EEG tokens, not the class."""

import numpy as np
import pytest
from flax import nnx

from eegpt.copilot import decoder as C
from eegpt.copilot import instruct as I
from eegpt.copilot import knowledge as kb
from eegpt.copilot.corpus import ANSWER, PAD


def _tokens(n, slots=6, width=5, seed=0):
    """EEG tokens whose class (MW: rest / arithmetic) is the sign of electrode 7's first feature;
    every window has 4 real electrodes (ids 3, 7, 9, 11) and 2 padded slots of noise."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, slots, width)).astype(np.float32)
    ids = np.tile(np.asarray([9, 3, 7, 11, 0, 0], np.int32)[:slots], (n, 1))
    mask = np.tile(np.asarray([True, True, True, True, False, False])[:slots], (n, 1))
    labels = (feats[:, 2, 0] > 0).astype(int)
    return (feats, ids, mask), labels


def test_the_prompt_hides_the_class_and_the_answer_states_it_first():
    cases, window = I.make_cases("MW", ("rest", "arithmetic"), np.asarray([0, 1, 1]), 2, np.random.default_rng(0))
    assert [c.label for c in cases] == ["rest", "rest", "arithmetic", "arithmetic", "arithmetic", "arithmetic"]
    assert window.tolist() == [0, 0, 1, 1, 2, 2]
    tok = C.train_tokenizer(cases * 20, 400)
    prompt = I.instruct_prompt(tok, "MW", cases[0].question)
    assert tok.token_to_id("<class:hidden>") in prompt and prompt[-1] == ANSWER
    assert not any(tok.token_to_id(f"<class:MW:{c}>") in prompt for c in ("rest", "arithmetic"))
    toks, valid, weight = I.encode(tok, cases, 160)
    for i, c in enumerate(cases):
        n = len(I.instruct_prompt(tok, c.task, c.question, c.age, c.sex))
        assert toks[i, n] == tok.token_to_id(f"<class:MW:{c.label}>")  # the answer's first token
        assert toks[i, n + 1] == tok.token_to_id(f"<p:{min(int(c.probs[c.label] * 10), 9)}>")
        assert weight[i, : n - 1].sum() == 0  # the prompt is not learnt
        answer_len = int(valid[i].sum()) - n
        assert weight[i, n - 1] == answer_len - 1  # the class weighs as much as the rest of the answer
        assert weight[i, n: n + answer_len - 1].tolist() == [1.0] * (answer_len - 1)
    lighter = I.encode(tok, cases, 160, class_weight=0.25)[2]  # only the class token's weight changes
    rows, first = np.arange(len(cases)), np.argmax(weight > 0, 1)
    assert np.allclose(lighter[rows, first], 0.25 * weight[rows, first])
    lighter[rows, first] = weight[rows, first]
    assert np.array_equal(lighter, weight)


def test_padded_electrode_slots_change_nothing_and_decoding_matches_the_cache_free_pass():
    (feats, ids, mask), _ = _tokens(2)
    cfg = C.DecoderConfig(vocab=64, d_model=32, layers=2, heads=2, head_dim=16, ffn=64, max_len=64,
                          eeg_features=5, eeg_tokens=6)
    model = C.Decoder(cfg, rngs=nnx.Rngs(0))
    model.eval()
    toks = np.asarray([[5, 6, 7, ANSWER]] * 2, np.int32)
    base = model.logits((feats, ids, mask), toks, toks != PAD)
    noisy = feats.copy()
    noisy[:, 4:] = 100.0  # what lies in padded slots is never read
    assert np.allclose(base, model.logits((noisy, ids, mask), toks, toks != PAD), atol=1e-5)
    assert not np.allclose(base[0], base[1], atol=1e-3)  # the real electrodes are read
    prompt = toks[0].tolist()
    out = C.generate(model, (feats[0], ids[0], mask[0]), prompt, max_new=6)  # with the KV cache
    seq = np.asarray([prompt + out], np.int32)
    lg = model.logits((feats[:1], ids[:1], mask[:1]), seq, seq != PAD)
    assert out and np.argmax(lg[0, len(prompt) - 1: len(prompt) - 1 + len(out)], -1).tolist() == out


def test_instruction_tuning_learns_to_read_the_class_from_the_eeg_tokens():
    (feats, ids, mask), labels = _tokens(600)
    cases, window = I.make_cases("MW", ("rest", "arithmetic"), labels[:400], 1, np.random.default_rng(1))
    tok = C.train_tokenizer(cases, 500)
    cfg = C.DecoderConfig(vocab=tok.get_vocab_size(), d_model=64, layers=2, heads=2, head_dim=32, ffn=128,
                          max_len=200, eeg_features=5, eeg_tokens=6)
    model = C.Decoder(cfg, rngs=nnx.Rngs(0))
    data = ((feats[window], ids[window], mask[window]), *I.encode(tok, cases, 150),
            np.zeros((len(cases), 1, 1), np.float32))
    held = tuple(a[400:] for a in (feats, ids, mask))

    def accuracy():
        lg = I.class_logits(model, tok, "MW", ("rest", "arithmetic"), held)
        return I.balanced_accuracy(labels[400:], I.softmax(lg), [0, 1])

    model.eval()
    before = accuracy()
    C.fit(model, data, C.CopilotTrainConfig(steps=300, batch_size=32, lr=2e-3, warmup=30))
    after = accuracy()
    assert before < 0.7 and after > 0.9, (before, after)
    # its whole answer names the class it read, and no other
    row = {"rest": 0.1, "arithmetic": 0.9}
    i = 400 + int(np.flatnonzero(labels[400:] == 1)[0])
    case = I.Case("MW", "arithmetic", row, kb.QUESTIONS["state"]["MW"][0])
    raw = I.answer_case(model, tok, case, (feats[i], ids[i], mask[i]))
    check = kb.faithfulness(kb.fill(raw, "MW", "arithmetic", row), "MW", "arithmetic", row)
    assert check["names_prediction"] and not check["contradiction"], raw


def test_each_view_s_columns_in_an_eeg_token():
    assert I.view_columns("ete+bands+erp", 128 + 5 + 16) == [("ete", 128), ("bands", 5), ("erp", 16)]


def test_a_store_without_validation_lends_its_last_training_subjects(stores):
    s = stores["mw"]
    no_val = s.with_splits(np.where(s.split_of == "val", "train", s.split_of))  # two training subjects
    lent = I.with_validation(no_val, 1)
    subjects = sorted({str(x) for x in no_val.subject_of[no_val.indices("train")]})
    assert set(lent.subject_of[lent.indices("val")].astype(str)) == {subjects[-1]}
    assert subjects[-1] not in set(lent.subject_of[lent.indices("train")].astype(str))
    assert (lent.indices("test") == no_val.indices("test")).all()
    assert I.with_validation(s, 1) is s  # a val split of its own is used as it is
    with pytest.raises(I.EEGInputError, match="training subjects and no validation split"):
        I.with_validation(no_val, len(subjects))


def test_the_decoder_s_linear_probe_is_the_regression_it_was_fitted_from_and_training_keeps_it(tmp_path):
    """LP-FT: the probe (its view chosen on validation) gives, as the class logits at ``<a>``, the
    logistic regression's probabilities (three classes; electrodes in another order read alike), and
    the transformer trains around it."""
    rng = np.random.default_rng(0)
    (feats, ids, mask), _ = _tokens(300)
    labels = np.digitize(feats[:, 2, 0] + 0.5 * feats[:, 0, 1], [-0.5, 0.5])  # SS-like, 3 of 5 classes
    classes = ("W", "N1", "N2", "N3", "REM")
    w = {"tokens": (feats, ids, mask), "labels": labels, "subjects": np.arange(300) % 6}
    train = {k: (tuple(a[:200] for a in v) if k == "tokens" else v[:200]) for k, v in w.items()}
    val = {k: (tuple(a[200:] for a in v) if k == "tokens" else v[200:]) for k, v in w.items()}
    views = [("a", 3), ("b", 2)]  # the class lies in view a's columns
    probe = I.linear_probe(train, val, [0, 1, 2], views=views)
    assert probe["val_balanced_accuracy"] > 0.8 and probe["views"] == ["a"]  # chosen on validation
    # where the heads' store lent its validation subjects, chosen as that linear start was: by
    # cross-validation over the training subjects
    cv = I.linear_probe(train, val, [0, 1, 2], views=views, cross_validate=True)
    assert cv["views"] == ["a"] and cv["selected_on"] == "5-fold cross-validation over training subjects"
    assert probe["selected_on"] == "val"
    cases, window = I.make_cases("SS", classes, labels[:200], 1, rng)
    tok = C.train_tokenizer(cases, 500)
    heads = [type("Head", (), {"task": "SS", "classes": classes})()]
    cfg = C.DecoderConfig(vocab=tok.get_vocab_size(), d_model=32, layers=1, heads=2, head_dim=16, ffn=64,
                          max_len=200, eeg_features=5, eeg_tokens=6,
                          probe_classes=[tok.token_to_id(f"<class:SS:{c}>") for c in classes])
    model = C.Decoder(cfg, rngs=nnx.Rngs(0))
    I.fit_probe(model, tok, heads, [probe])
    assert not np.asarray(model.probe[...])[:, 3:].any()  # the views not chosen are not read
    C.save(tmp_path, model, tok)
    model, tok = C.load(tmp_path)
    bare = C.Decoder(cfg, rngs=nnx.Rngs(0))  # the same transformer, no probe fitted
    bare.eval()
    order = np.asarray([2, 0, 3, 1, 4, 5])  # the montage in another order
    held = tuple(a[200:][:, order] for a in (feats, ids, mask))
    diff = (I.class_logits(model, tok, "SS", classes, held) - I.class_logits(bare, tok, "SS", classes, held))[:, :3]
    assert np.allclose(I.softmax(diff), probe["predict"](val["tokens"])[:, :3], atol=1e-3)
    assert np.allclose(diff, I.probe_logits(model, tok, "SS", classes, held)[:, :3], atol=1e-4)
    import dataclasses
    model.cfg = dataclasses.replace(cfg, own_reading=0.0)  # the class read by the probe alone
    assert np.allclose(I.class_logits(model, tok, "SS", classes, held), I.probe_logits(model, tok, "SS", classes, held),
                       atol=1e-4)
    model.cfg = cfg
    prompt = I.instruct_prompt(tok, "SS", kb.QUESTIONS["state"]["SS"][0])  # decoding with the KV cache reads it too
    first = C.generate(model, tuple(a[0] for a in held), prompt, max_new=2)[0]
    class_ids = [tok.token_to_id(f"<class:SS:{c}>") for c in classes]
    seq = np.asarray([prompt], np.int32)
    assert first == int(np.argmax(model.logits(tuple(a[:1] for a in held), seq, seq != PAD)[0, -1]))
    assert first in class_ids
    data = ((feats[window], ids[window], mask[window]), *I.encode(tok, cases, 150),
            np.zeros((len(cases), 1, 1), np.float32))
    before = np.asarray(model.probe[...]).copy()
    layer = np.asarray(model.blocks[0].q.base.kernel[...]).copy()
    C.fit(model, data, C.CopilotTrainConfig(steps=5, batch_size=16, lr=1e-3, warmup=1), wrt=I.TRAINED)
    assert np.array_equal(before, np.asarray(model.probe[...]))
    assert not np.allclose(layer, np.asarray(model.blocks[0].q.base.kernel[...]))


def test_instruction_settings_out_of_range_are_refused_in_one_line():
    for bad, says in (({"own_reading": -0.5}, "--own-reading -0.5: must be 0 or more"),
                      ({"token_dropout": 1.0}, r"--token-dropout 1.0: must lie in \[0, 1\)"),
                      ({"class_weight": 0.0}, "--class-weight 0.0: must be positive")):
        with pytest.raises(I.EEGInputError, match=says):
            I.InstructConfig(**bad)
    assert I.InstructConfig(own_reading=None).own_reading is None  # chosen on validation
