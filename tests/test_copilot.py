"""The copilot: knowledge base faithfulness, tokenizer, decoding with and without the KV cache,
pruning, LoRA merging and the EMR."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from fhir.resources.R4B.bundle import Bundle

from eegpt.copilot import answer, emr
from eegpt.copilot import corpus as CO
from eegpt.copilot import decoder as D
from eegpt.copilot import knowledge as kb


@pytest.fixture(scope="module")
def corpus():
    return CO.make_corpus(400, seed=3)


@pytest.fixture(scope="module")
def tok(corpus):
    return D.train_tokenizer(corpus, 600)


def test_every_label_set_has_knowledge_and_reference_answers_are_faithful():
    rng = np.random.default_rng(0)
    for task, sets in CO.label_sets().items():
        assert sets, task
        for _, classes in sets:
            for label in classes:
                for _ in range(6):
                    probs = CO.random_probs(rng, list(classes), label)
                    q = kb.QUESTIONS["state"][task][0] if rng.random() < 0.5 else "What do you suggest?"
                    text = kb.fill(kb.reference(task, label, probs, q, rng), task, label, probs, 40, "F")
                    check = kb.faithfulness(text, task, label, probs)
                    assert check["names_prediction"] and not check["contradiction"], (task, label, text)
                    assert check["says_uncertain"] == (max(probs.values()) < kb.UNCERTAIN_BELOW), text
                    assert "<" not in text


def test_faithfulness_catches_a_wrong_class():
    probs = {"joy": 0.8, "fear": 0.1, "anger": 0.1}
    assert kb.faithfulness("The reading is consistent with fear.", "ER", "joy", probs) == {
        "names_prediction": False, "contradiction": True, "says_uncertain": False}
    # an uncertain answer may name its alternatives, and only those
    probs = {"joy": 0.4, "fear": 0.35, "anger": 0.15, "sadness": 0.1}
    assert not kb.faithfulness("joy, uncertain; fear or anger.", "ER", "joy", probs)["contradiction"]
    assert kb.faithfulness("joy, uncertain; sadness.", "ER", "joy", probs)["contradiction"]
    # "non-target" is not read as "target"
    assert kb.named_classes("a frequent standard stimulus", "CM", ["target", "non_target"]) == {"non_target"}


def test_night_report_from_a_hypnogram():
    text = kb.night_report(["W"] * 4 + ["N1"] * 2 + ["N2"] * 10 + ["N3"] * 2 + ["REM"] * 2)
    assert "sleep efficiency was 80%" in text and "onset after 2 min" in text and "N2 50%" in text


def test_tokenizer_round_trips_text_and_keeps_slots_whole(tok, corpus):
    for c in corpus[:50]:
        ids = tok.encode(" " + c.answer).ids
        assert tok.decode(ids, skip_special_tokens=False) == " " + c.answer
    assert tok.encode("<pred>").ids == [tok.token_to_id("<pred>")]
    prompt = CO.encode_prompt(tok, corpus[0])
    assert None not in prompt and prompt[-1] == CO.ANSWER


def _tiny(tok, **kw):
    cfg = D.DecoderConfig(vocab=tok.get_vocab_size(), d_model=32, layers=2, heads=4, head_dim=8, ffn=48,
                          max_len=160, prefix=2, eeg_features=8, **kw)
    return D.Decoder(cfg, rngs=nnx.Rngs(0))


@pytest.mark.slow  # about a minute on 2 cores
def test_decoding_with_and_without_the_cache_agree(tok, corpus):
    model = _tiny(tok)
    model.eval()
    eeg = np.random.default_rng(0).normal(size=8).astype(np.float32)
    prompt = CO.encode_prompt(tok, corpus[1])
    cached = D.generate(model, eeg, prompt, max_new=12)
    seq = list(prompt)  # no cache: the whole sequence again for every token
    for _ in range(12):
        lg = model.logits(jnp.asarray(eeg)[None], jnp.asarray([seq]), jnp.ones((1, len(seq)), bool))
        nxt = int(jnp.argmax(lg[0, -1]))
        if nxt == CO.EOS:
            break
        seq.append(nxt)
    assert cached == seq[len(prompt):]
    assert len(cached) > 0
    sampled = [D.generate(model, eeg, prompt, max_new=12, top_k=5, seed=s) for s in range(3)]
    assert len({tuple(x) for x in sampled}) > 1  # top-k sampling draws different continuations


def test_training_lowers_the_loss_and_the_model_reloads(tmp_path):
    r = D.train(tmp_path, D.CopilotTrainConfig(pairs=300, steps=60, vocab=500, lr=1e-2, warmup=5),
                D.DecoderConfig(d_model=32, layers=1, heads=2, head_dim=16, ffn=64), progress=False)
    losses = [h["loss"] for h in r["history"]]
    assert losses[-1] < 0.6 * np.log(500)  # from ~ln(vocab) at the start
    model, tok = D.load(tmp_path)
    cases = CO.make_corpus(12, seed=11)
    own = 0
    for case in cases:
        out = answer(model, tok, case)
        # the decoder alone, before the guard: its text with the slots filled, checked here
        alone = kb.fill(out["decoder_text"], case.task, case.label, case.probs, case.age, case.sex, None)
        check = kb.faithfulness(alone, case.task, case.label, case.probs)
        faithful = check["names_prediction"] and not check["contradiction"] and (
            max(case.probs.values()) >= kb.UNCERTAIN_BELOW or check["says_uncertain"])
        assert out["fallback"] == (not faithful)  # the fallback flag says exactly when the guard stepped in
        assert (out["text"] == alone) == faithful  # the decoder's own answer is kept when, and only when, faithful
        own += faithful
    assert own >= 6, f"the decoder alone was faithful on {own} of {len(cases)} cases"


def test_pruning_keeps_the_most_important_heads_and_channels(tok):
    model = _tiny(tok)
    blk = model.blocks[0]
    for n in ("q", "k", "v"):  # head 1 of layer 0 carries nothing: it must go first
        k = getattr(blk, n).base.kernel
        k[...] = k[...].at[:, 8:16].set(0.0)
    blk.o.base.kernel[...] = blk.o.base.kernel[...].at[8:16].set(0.0)
    small = D.prune(model, 0.5)
    assert small.cfg.heads == 2 and small.cfg.ffn == 24
    assert D.param_count(small) < D.param_count(model)
    assert small.blocks[0].q.base.kernel.shape == (32, 16) and small.blocks[0].down.base.kernel.shape == (24, 32)
    head1 = np.asarray(model.blocks[0].q.base.kernel[...][:, 8:16])
    kept = np.asarray(small.blocks[0].q.base.kernel[...]).reshape(32, 2, 8)
    assert not any(np.allclose(kept[:, h], head1) for h in range(2))
    lg = small.logits(jnp.zeros((1, 8)), jnp.asarray([[5, 6, 7]]), jnp.ones((1, 3), bool))
    assert lg.shape == (1, 3, tok.get_vocab_size())
    model.eval()
    assert D.prune(model, 0.0).cfg.heads == 4  # ratio 0 keeps everything, and the same outputs
    same = D.prune(model, 0.0)
    x = (jnp.zeros((1, 8)), jnp.asarray([[5, 6, 7]]), jnp.ones((1, 3), bool))
    np.testing.assert_allclose(same.logits(*x), model.logits(*x), atol=1e-5)


def test_lora_starts_as_the_base_model_and_merges_exactly(tok):
    base = _tiny(tok)
    base.eval()
    lora = D.with_lora(base, rank=4, alpha=16.0, dropout=0.1)
    lora.eval()
    x = (jnp.ones((1, 8)), jnp.asarray([[5, 6, 7, 8]]), jnp.ones((1, 4), bool))
    np.testing.assert_allclose(lora.logits(*x), base.logits(*x), atol=1e-5)  # B = 0 at the start
    for blk in lora.blocks:  # as if trained
        for n in ("q", "v", "down"):
            b = getattr(blk, n).lora.lora_b
            b[...] = jax.random.normal(jax.random.key(1), b.shape) * 0.05
    merged = D.merge_lora(lora)
    assert merged.cfg.lora_rank == 0 and D.param_count(merged) == D.param_count(base)
    np.testing.assert_allclose(merged.logits(*x), lora.logits(*x), atol=1e-4)
    assert not np.allclose(merged.logits(*x), base.logits(*x), atol=1e-4)


def test_emr_leaves_unknown_fields_blank_and_validates_as_fhir(tmp_path):
    r = emr.Record("SS", "N2", {"W": 0.1, "N1": 0.1, "N2": 0.6, "N3": 0.1, "REM": 0.1}, "Stage N2 sleep.", None, None,
                   "night.edf", 40, ["Over 0.3 h in bed, sleep efficiency was 90%."])
    md = emr.write(r, tmp_path / "r.md").read_text()
    for field in emr.FIELDS:
        assert f"## {field}" in md
    assert md.count(emr.BLANK) == 7  # everything but the diagnosis is the clinician's
    bundle = json.loads(emr.write(r, tmp_path / "r.json").read_text())
    Bundle.model_validate(bundle)
    patient = bundle["entry"][0]["resource"]
    assert patient == {"resourceType": "Patient", "id": patient["id"]}  # no sex, no age, no name: not invented
    assert not any(e["resource"].get("code", {}).get("coding", [{}])[0].get("code") == "30525-0"
                   for e in bundle["entry"] if "code" in e["resource"])
    with pytest.raises(ValueError):
        emr.write(r, tmp_path / "r.txt")


def test_wavelet_summary_has_a_fixed_length_and_feeds_prefix_and_prompt(tok, corpus):
    rng = np.random.default_rng(0)
    for t in (256, 1024, 7680):
        s = CO.wavelet_summary(rng.normal(size=(3, t)), 16)
        assert s.shape == (3, 16) and np.isfinite(s).all()
    slow = np.sin(np.linspace(0, 4 * np.pi, 1024))[None]
    spectrum = np.abs(np.fft.rfft(CO.wavelet_summary(slow, 16)[0]))
    assert spectrum[1:].argmax() + 1 == 2  # the two slow cycles survive the compression (filter delay aside)
    words = CO.wavelet_tokens(s)
    assert len(words) == 16 and all(tok.token_to_id(w) is not None for w in words)
    case = dataclasses.replace(corpus[0], wave=s)
    assert len(CO.encode_prompt(tok, case, wave_text=True)) == len(CO.encode_prompt(tok, case)) + 16
    hidden = CO.encode_prompt(tok, case, hide_class=True)
    assert tok.token_to_id("<class:hidden>") in hidden
    model = _tiny(tok, wavelet=16)
    model.eval()
    x = (jnp.zeros((1, 8)), jnp.asarray([[5, 6]]), jnp.ones((1, 2), bool))
    padded = np.zeros((1, 5, 16), np.float32)
    padded[0, :3] = s
    # padded (all-zero) channels do not count in the wavelet prefix's mean
    np.testing.assert_allclose(model.logits(*x, wave=jnp.asarray(padded)),
                               model.logits(*x, wave=jnp.asarray(s)[None]), atol=1e-5)


def test_every_cards_classes_have_clinical_text():
    """The copilot's corpus draws from every card's classes: a card with a class the knowledge base
    cannot describe would stop the copilot's training (and the demo) with a KeyError."""
    import eegpt.copilot.knowledge as kb
    from eegpt.copilot.corpus import label_sets

    missing = {name: [c for c in classes if c not in kb.CLASSES[task]]
               for task, sets in label_sets().items() for name, classes in sets}
    assert not {k: v for k, v in missing.items() if v}


def test_retrieval_cites_only_passages_that_keep_the_answer_faithful(tmp_path):
    from eegpt.copilot.dialogue import Library
    from eegpt.errors import EEGInputError

    docs = tmp_path / "guidelines"
    (docs / "sub").mkdir(parents=True)
    (docs / "ward.md").write_text("# Sleep hygiene\n\nKeep a regular bedtime and avoid caffeine after noon on the ward.\n\n"
                                  "# Confidence\n\nA reading with low confidence is repeated the next morning.\n")
    (docs / "sub" / "fear.md").write_text("# Anxiety\n\nIf the EEG shows fear, screen for anxiety with GAD-7 first.\n")
    lib = Library(docs)
    probs = {"joy": 0.7, "sadness": 0.1, "fear": 0.1, "neutral": 0.1}
    cited = lib.search("What do you suggest?", "ER", probs, {"joy"}, "joy")
    assert cited[0].source == "knowledge base: joy, advice"
    assert lib.search("When is a low confidence reading repeated?", "ER", probs, {"joy"}, "joy")[0].source == "ward.md § Confidence"
    # a guideline that names another class is never cited for a joy reading, but is for fear
    anxious = "screen for anxiety GAD-7 fear"
    assert all("fear.md" not in p.source for p in lib.search(anxious, "ER", probs, {"joy"}, "joy", k=20))
    assert lib.search(anxious, "ER", probs, {"joy", "fear"}, "joy")[0].source == "sub/fear.md § Anxiety"
    for p in lib.search(anxious, "ER", probs, {"joy"}, "joy", k=50):  # class passages only of the reading
        assert p.label in (None, "joy") and not kb.named_classes(p.text, "ER", probs) - {"joy"}
    for bad, says in ((tmp_path / "none", "must be a folder"), (tmp_path / "sub-empty", "no Markdown")):
        if says == "no Markdown":
            bad.mkdir()
        with pytest.raises(EEGInputError, match=says):
            Library(bad)
