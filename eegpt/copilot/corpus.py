"""The copilot's training corpus: label sets, prompts, the wavelet option, cases with reference answers.

A training pair is a prompt — task, predicted class, its probability (a tenth bin), age decade,
sex and the clinician's question — and a reference answer from :mod:`eegpt.copilot.knowledge`
written with slots. ``eeg_bank`` draws the graph's pooled embeddings of real training windows for
the decoder's EEG prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eegpt.copilot import knowledge as kb

SPECIAL = ["<pad>", "<eos>", "<a>", *kb.SLOTS]
PAD, EOS, ANSWER = 0, 1, 2


def label_sets() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Per task, the label sets the corpus draws from: every card's classes, plus 3-class valence."""
    from eegpt.cards import card_names, load_card

    sets: dict[str, list] = {t: [] for t in kb.CLASSES}
    for card in map(load_card, card_names()):
        if card.task in sets and card.classes and card.classes not in [s for _, s in sets[card.task]]:
            sets[card.task].append((card.name, tuple(card.classes)))
    sets["ER"].append(("valence-3", ("negative", "neutral", "positive")))
    return sets


def prompt_tokens(task: str, label: str, prob: float, age: int | None, sex: str | None) -> list[str]:
    """The prompt's special tokens: task, predicted class, probability decile, age decade, sex."""
    decade = "unknown" if age is None else f"{min(age // 10, 9)}0s"
    sex = {"F": "F", "M": "M"}.get((sex or "").upper()[:1], "unknown")
    return [f"<task:{task}>", f"<class:{task}:{label}>", f"<p:{min(int(prob * 10), 9)}>", f"<age:{decade}>",
            f"<sex:{sex}>"]


def vocabulary_specials() -> list[str]:
    """Every special token the tokenizer must keep whole (tasks, classes, deciles, ages, sexes, wavelet levels)."""
    out = list(SPECIAL)
    for task, classes in kb.CLASSES.items():
        out.append(f"<task:{task}>")
        out += [f"<class:{task}:{c}>" for c in classes]
    out += [f"<p:{i}>" for i in range(10)] + [f"<age:{d}0s>" for d in range(10)] + ["<age:unknown>"]
    out += ["<sex:F>", "<sex:M>", "<sex:unknown>", "<class:hidden>"] + [f"<w{i}>" for i in range(WAVE_LEVELS)]
    return out


# ----------------------------------------------------------------------------- the wavelet prompt option

WAVE_LEVELS = 8


def wavelet_summary(x_CxT: np.ndarray, length: int = 16, wavelet: str = "db4") -> np.ndarray:
    """Each channel compressed to ``length`` numbers (the EEG Emotion Copilot's "W"): the
    approximation coefficients of a PyWavelets decomposition deep enough to leave at least
    ``length`` of them, resampled to exactly ``length`` and divided by the channel's std."""
    import pywt

    x = np.asarray(x_CxT, np.float64)
    level = 0
    while level < pywt.dwt_max_level(x.shape[1], wavelet) and x.shape[1] / 2 ** (level + 1) >= length:
        level += 1
    # periodization: exactly T / 2^level coefficients, no boundary padding to skew the resampling
    approx = pywt.wavedec(x, wavelet, mode="periodization", level=level, axis=-1)[0] if level else x
    grid = np.linspace(0, approx.shape[1] - 1, length)
    out = np.stack([np.interp(grid, np.arange(approx.shape[1]), a) for a in approx])
    return (out / (x.std(1, keepdims=True) + 1e-6)).astype(np.float32)


def wavelet_tokens(summary_CxL: np.ndarray) -> list[str]:
    """The summary as prompt text ("W→S"): the channel mean, quantised into 8 levels."""
    m = summary_CxL.mean(0)
    q = np.clip(np.round((np.tanh(m) + 1) / 2 * (WAVE_LEVELS - 1)), 0, WAVE_LEVELS - 1).astype(int)
    return [f"<w{i}>" for i in q]


@dataclass
class Case:
    """One prediction to answer (and, in the corpus, its reference answer with slots)."""

    task: str
    label: str
    probs: dict[str, float]
    question: str
    age: int | None = None
    sex: str | None = None
    eeg: np.ndarray | None = None     # pooled graph embedding
    wave: np.ndarray | None = None    # wavelet summary [channels, length] (the wavelet option)
    answer: str = ""                  # reference with slots


def random_probs(rng, classes, label) -> dict[str, float]:
    """Probabilities whose top class is ``label``: confident two times in three, else uncertain."""
    n = len(classes)
    while True:
        conc = np.full(n, 0.6)
        p = rng.dirichlet(conc)
        i = classes.index(label)
        top = int(p.argmax())
        p[[i, top]] = p[[top, i]]
        if rng.random() < 0.66:
            p[i] += rng.uniform(0.5, 3.0)
            p /= p.sum()
        if p.argmax() == i:
            return {c: float(v) for c, v in zip(classes, p)}


def make_corpus(n: int, seed: int = 0, eeg_bank: dict | None = None) -> list[Case]:
    """``n`` training pairs; ``eeg_bank`` maps (task, label) to pooled embeddings [N, D] to draw
    from, or to ``(pooled, wavelet summaries)`` of the same windows."""
    rng = np.random.default_rng(seed)
    sets = label_sets()
    tasks = list(kb.CLASSES)
    out = []
    for _ in range(n):
        task = tasks[int(rng.integers(len(tasks)))]
        _, classes = sets[task][int(rng.integers(len(sets[task])))]
        classes = list(classes)
        label = classes[int(rng.integers(len(classes)))]
        probs = random_probs(rng, classes, label)
        kinds = ["state", "suggest", "summary"] + (["night"] if task == "SS" else [])
        kind = kinds[int(rng.integers(len(kinds)))]
        pool = {"state": kb.QUESTIONS["state"][task], "night": kb.NIGHT_QUESTIONS}.get(kind, kb.QUESTIONS.get(kind))
        question = pool[int(rng.integers(len(pool)))]
        age = None if rng.random() < 0.15 else int(rng.integers(18, 90))
        sex = [None, "F", "M"][int(rng.integers(3))]
        eeg = wave = None
        if eeg_bank and (task, label) in eeg_bank:
            bank = eeg_bank[(task, label)]
            pooled, waves = bank if isinstance(bank, tuple) else (bank, None)
            j = int(rng.integers(len(pooled)))
            eeg, wave = pooled[j], None if waves is None else waves[j]
        out.append(Case(task, label, probs, question, age, sex, eeg, wave,
                        kb.reference(task, label, probs, question, rng)))
    return out


def encode_prompt(tok, case: Case, hide_class: bool = False, wave_text: bool = False) -> list[int]:
    """The prompt's ids. ``hide_class`` replaces the predicted class by ``<class:hidden>`` (the
    wavelet ablation: what the decoder can tell from the EEG alone); ``wave_text`` appends the
    wavelet summary as tokens ("W→S")."""
    fields = prompt_tokens(case.task, case.label, case.probs[case.label], case.age, case.sex)
    if hide_class:
        fields[1] = "<class:hidden>"
    if wave_text and case.wave is not None:
        fields += wavelet_tokens(case.wave)
    return [tok.token_to_id(f) for f in fields] + tok.encode(" " + case.question).ids + [ANSWER]


def eeg_bank(finetuned, stores, split: str = "train", wavelet: int = 0, features: dict | None = None) -> dict:
    """{(task, label): pooled graph embeddings} of ``split`` windows, for training the prefix; with
    ``wavelet`` > 0, {(task, label): (pooled, wavelet summaries)} of the same windows.
    ``features``: the frozen ETE's features of the stores, already encoded (``Model.cache``)."""
    bank: dict = {}
    for s in stores:
        r = finetuned.run(s, split, cached=(features or {}).get(s.name))
        waves = [wavelet_summary(s[int(i)].x, wavelet) for i in r["positions"]] if wavelet else None
        for lab in np.unique(r["labels"]):
            pick = np.flatnonzero(r["labels"] == lab)
            part = r["pooled"][pick]
            bank.setdefault((s.task, s.classes[lab]), []).append(
                (part, [waves[i] for i in pick]) if wavelet else part)
    if not wavelet:
        return {k: np.concatenate(v) for k, v in bank.items()}
    return {k: (np.concatenate([p for p, _ in v]), [w for _, ws in v for w in ws]) for k, v in bank.items()}
