"""A conversation about one recording: the copilot's reading, then follow-up questions answered
from the same prediction, each with passages retrieved from the knowledge base (and the user's own
Markdown guidelines) and cited.

Retrieval is TF-IDF over character 3-5-grams within words, with cosine similarity (scikit-learn):
n-grams match "confident" to "confidence" and "suggest" to "suggestion" without a stemmer. Only passages that keep the answer
faithful are candidates: the knowledge base's passages about the predicted class, and passages
that name no class of the head's label set outside those the answer may name (the prediction, and
the runner-ups of an uncertain reading). So a cited passage can never contradict the reading, and the whole
answer — passages included — passes :func:`eegpt.copilot.knowledge.faithfulness`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegpt.copilot import knowledge as kb
from eegpt.copilot.copilot import Copilot, check_age, normalise_sex
from eegpt.errors import EEGInputError
from eegpt.predict import predict

# Words a question uses for each aspect of a class's text, so "What do you suggest?" finds advice.
ASPECTS = {"finding": "finding pattern shows EEG see seen",
           "meaning": "meaning means interpretation significance cause why explain",
           "advice": "advice suggest suggestion recommend recommendation next step follow-up treatment do"}
# General passages: how a reading is made and when not to trust it (no class named).
ABOUT = {
    "How the reading is made": "EEGPT cuts the recording into windows, encodes each electrode's one-second tokens "
    "with a causal transformer pre-trained on unlabeled EEG, and a head trained on labelled recordings gives each "
    "window a probability per class. The reading is the class with the highest mean probability over the windows.",
    "Confidence and uncertainty": "The probabilities are temperature-scaled on validation subjects, so that a "
    "reading given with 80% confidence was right about 80% of the time there. Below the confidence at which the "
    "validation readings were 90% accurate, the copilot gives no finding and advises review; an uncertain or low "
    "probability reading should be confirmed by a repeat recording.",
    "Unfamiliar recordings": "When most windows of a recording lie farther from every training window than held-out "
    "training windows did, the recording is unlike the data the model learned from: a different device, montage, "
    "population or artefact. No reading is given then; review the recording by eye.",
    "Limitations": "The copilot's answers are preliminary and assistive, not a diagnosis: a clinician reviews and "
    "signs the record. Accuracy depends on how alike the patient's recording is to the training data, which the "
    "model states with every answer.",
}


@dataclass(frozen=True)
class Passage:
    source: str            # where it comes from, as cited
    text: str
    task: str | None = None    # a knowledge-base class passage: its task and class (None: any)
    label: str | None = None


def knowledge_passages() -> list[Passage]:
    """The knowledge base as passages to retrieve: the general ones, then each class's finding, meaning and advice."""
    out = [Passage(f"knowledge base: {title}", text) for title, text in ABOUT.items()]
    for task, classes in kb.CLASSES.items():
        for label, c in classes.items():
            out.append(Passage(f"knowledge base: {c.name}, finding", f"The EEG shows {c.finding[0]}.", task, label))
            out.append(Passage(f"knowledge base: {c.name}, meaning", " ".join(c.meaning), task, label))
            out.append(Passage(f"knowledge base: {c.name}, advice", " ".join(c.advice), task, label))
    return out


def markdown_passages(folder) -> list[Passage]:
    """Paragraphs of every ``*.md`` file under ``folder``, cited as ``file.md § heading``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EEGInputError(f"{folder}: --docs must be a folder of Markdown (.md) files")
    files = sorted(folder.rglob("*.md"))
    if not files:
        raise EEGInputError(f"{folder}: no Markdown (.md) files to retrieve from")
    out = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise EEGInputError(f"{path}: cannot be read as UTF-8 text ({err})") from None
        heading = ""
        for block in re.split(r"\n\s*\n", text):
            block = block.strip()
            if block.startswith("#"):  # a heading (maybe with its first paragraph below it)
                first, _, block = block.partition("\n")
                heading = first.lstrip("#").strip()
                block = block.strip()
            if len(block.split()) >= 4:
                where = f"{path.relative_to(folder)}" + (f" § {heading}" if heading else "")
                out.append(Passage(where, re.sub(r"\s+", " ", block)))
    return out


class Library:
    """Passages to cite, indexed once by TF-IDF (knowledge base, plus ``docs``' Markdown files)."""

    def __init__(self, docs=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.passages = knowledge_passages() + (markdown_passages(docs) if docs else [])
        indexed = [f"{p.source} {ASPECTS.get(p.source.rsplit(', ', 1)[-1], '')} {p.text}" for p in self.passages]
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(indexed)

    def search(self, query: str, task: str, probs: dict[str, float], allowed: set[str], about: str | None = None,
               k: int = 2) -> list[Passage]:
        """The ``k`` passages closest to ``query`` that name no class of ``probs`` outside ``allowed``;
        of the knowledge base's class passages, only those about class ``about`` of ``task``."""
        scores = (self.matrix @ self.vectorizer.transform([query]).T).toarray().ravel()
        out = []
        for i in np.argsort(-scores, kind="stable"):
            p = self.passages[i]
            if scores[i] <= 0 or len(out) == k:
                break
            if p.label is not None and (p.task != task or p.label != about):
                continue
            if kb.named_classes(p.text, task, probs) - allowed:
                continue
            out.append(p)
        return out


class Conversation:
    """One recording's reading, then follow-up questions about it (the terminal chat and the web UI).

    ``Conversation(copilot, recording)`` predicts once; ``ask(question)`` answers from that
    prediction with cited passages. ``turns`` keeps every question and answer.
    """

    def __init__(self, copilot: Copilot, recording, *, task=None, age=None, sex=None, seconds=None,
                 library: Library | None = None, montage=None, place="nearest"):
        self.copilot, self.age, self.sex = copilot, check_age(age), normalise_sex(sex)
        self.library = library or Library()
        self.prediction = predict(copilot.model, recording, task=task, seconds=seconds, montage=montage, place=place)
        self.turns: list[dict] = []

    def ask(self, question: str | None = None) -> dict:
        """``Copilot.respond``'s answer with ``citations`` (source, text) appended as [n] lines."""
        r = self.copilot.respond(self.prediction, question, self.age, self.sex)
        if r["out_of_distribution"]:
            allowed = set()
        elif r["uncertain"] or max(r["probs"].values()) < kb.UNCERTAIN_BELOW:  # it names its runner-ups
            allowed = set(sorted(r["probs"], key=r["probs"].get, reverse=True)[:3])
        else:
            allowed = {r["label"]}  # the answer's reading: the decoder's own when it reads the EEG alone
        about = None if r["out_of_distribution"] else r["label"]  # no class passage without a reading
        cited = self.library.search(r["question"], r["task"], r["probs"], allowed, about)
        r["citations"] = [{"n": i + 1, "source": p.source, "text": p.text} for i, p in enumerate(cited)]
        if cited:
            r["answer"] += "\n\nSources:\n" + "\n".join(f"[{c['n']}] {c['source']}: {c['text']}" for c in r["citations"])
        self.turns.append({"question": r["question"], "answer": r["answer"], "citations": r["citations"]})
        return r
