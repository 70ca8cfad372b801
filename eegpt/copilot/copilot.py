"""The copilot: a prediction -> a clinician's answer (and an EMR), with a faithfulness guard.

``Copilot(model_dir)`` loads the model once (:func:`eegpt.load`) and its decoder
(``MODEL/copilot``); ``ask(x)`` runs :func:`eegpt.predict` on a recording, has the decoder answer
the question with the prediction's slots filled, and says which data trained the model. An answer
that fails the check (does not name the prediction, names another class, or misses the
uncertainty of an uncertain reading) is replaced by a templated one, and ``fallback`` says so.
A reading below the confidence at which the head's validation windows were 90 % accurate
(``HeadSpec.answer_above``) gets no finding: the answer says it is uncertain and advises review
(``uncertain``); so does a recording unlike the training data (``out_of_distribution``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from eegpt.copilot import emr, instruct
from eegpt.copilot import knowledge as kb
from eegpt.copilot.corpus import Case, encode_prompt
from eegpt.copilot.decoder import Decoder, generate
from eegpt.copilot.decoder import load as load_decoder
from eegpt.errors import EEGInputError
from eegpt.model import EEGPT, load, model_dir
from eegpt.predict import Prediction, predict

SEXES = {"f": "F", "female": "F", "m": "M", "male": "M"}  # FHIR's words and their initials


def normalise_sex(sex: str | None) -> str | None:
    """``F``/``M`` from ``F``, ``M``, ``female`` or ``male`` (any case); None stays None."""
    if sex is None:
        return None
    if sex.lower() not in SEXES:
        raise EEGInputError(f"--sex {sex}: use F, M, female or male")
    return SEXES[sex.lower()]


def check_age(age: int | None) -> int | None:
    """``age`` if it is a plausible age in years (0 to 120) or None; refused in one line otherwise."""
    if age is not None and not 0 <= age <= 120:
        raise EEGInputError(f"--age {age}: must be between 0 and 120 years")
    return age


def answer(model: Decoder, tok, case: Case, night: str | None = None, top_k: int = 0, seed: int = 0) -> dict:
    """The decoder's answer to ``case``, slots filled, with its faithfulness check (see the module)."""
    eeg = case.eeg if case.eeg is not None else np.zeros(model.cfg.eeg_features, np.float32)
    ids = generate(model, eeg, encode_prompt(tok, case), top_k=top_k, seed=seed)
    return checked(tok.decode(ids, skip_special_tokens=False).strip(), case, night, seed)


def checked(raw: str, case: Case, night: str | None = None, seed: int = 0) -> dict:
    """A decoder's text with its slots filled from ``case``, or the templated answer where it fails
    the faithfulness check (see the module)."""
    text = decoded = kb.fill(raw, case.task, case.label, case.probs, case.age, case.sex, night)
    check = kb.faithfulness(text, case.task, case.label, case.probs)
    fallback = not check["names_prediction"] or check["contradiction"] or (
        max(case.probs.values()) < kb.UNCERTAIN_BELOW and not check["says_uncertain"])
    if fallback:
        ref = kb.reference(case.task, case.label, case.probs, case.question, np.random.default_rng(seed))
        text = kb.fill(ref, case.task, case.label, case.probs, case.age, case.sex, night)
    return {"text": text, "decoder_text": raw, "decoder_answer": decoded, "fallback": bool(fallback),
            "decoder_check": check}


class Copilot:
    """A model and its decoder, loaded once; ``ask`` answers about recordings.

    Parameters
    ----------
    model : a model directory (or a ``demo`` / ``finetune`` workdir holding ``model/``), or a
        loaded :class:`eegpt.model.EEGPT` together with ``copilot``.
    copilot : the decoder's directory (default: ``MODEL/copilot``, or ``MODEL/copilot-eeg-only``).
    eeg_only : answer from the EEG alone: an instruction-tuned decoder
        (``eegpt copilot-train --instruct``) reads each window's EEG tokens and states the class
        itself; the heads' class is not used (:mod:`eegpt.copilot.instruct`).
    """

    def __init__(self, model, copilot=None, eeg_only: bool = False):
        if isinstance(model, EEGPT):
            if copilot is None:
                raise EEGInputError("a loaded model needs copilot=DIR (the decoder's directory)")
            self.dir, self.model = None, model
        else:
            self.dir = model_dir(model)
            self.model = load(self.dir)
        path = Path(copilot) if copilot else self.dir / ("copilot-eeg-only" if eeg_only else "copilot")
        self.instruct = None  # the EEG-only decoder's instruct.json
        if eeg_only:
            self.decoder, self.tok, self.instruct = instruct.load(path)
        else:
            self.decoder, self.tok = load_decoder(path)

    def ask(self, x, *, task=None, age=None, sex=None, question=None, seconds=None, montage=None,
            place="nearest") -> dict:
        """Recording -> prediction -> answer (``montage``, ``place``: how the recording is read, as
        :func:`eegpt.predict` takes them). Returns the prediction's fields, ``question``,
        ``answer`` (with the model's provenance when it was trained on synthetic data),
        ``fallback`` (the decoder's text failed the faithfulness check and a template answers),
        ``decoder_answer`` (the decoder's own text, slots filled; None where no reading was given),
        ``trained_on``, ``record`` (an :class:`eegpt.copilot.emr.Record`) and timings."""
        age, sex = check_age(age), normalise_sex(sex)
        t0 = time.perf_counter()
        pred = predict(self.model, x, task=task, seconds=seconds, montage=montage, place=place)
        out = self.respond(pred, question, age, sex)
        out["seconds"]["predict"] = time.perf_counter() - t0 - out["seconds"]["decode"]
        return out

    def respond(self, pred: Prediction, question=None, age=None, sex=None) -> dict:
        """The answer to ``question`` about a prediction already made (see ``ask``)."""
        t0 = time.perf_counter()
        question = question or kb.QUESTIONS["state"][pred.task][0]
        answer_above = self.model.cfg.head(pred.head).answer_above
        trained_on = pred.trained_on
        if self.instruct is not None:  # the decoder's own reading of the EEG replaces the head's
            probs = instruct.read_recording(self.decoder, self.tok, self.instruct, pred.head, pred.eeg_tokens,
                                            question, age, sex)
            pred = dataclasses.replace(pred, probs=probs)
            answer_above = self.instruct["heads"][pred.head]["answer_above"]
            trained_on = (f"Read from the EEG alone by the copilot's instruction-tuned decoder "
                          f"({instruct.how_read(self.instruct)}), not by the graph's head. {pred.trained_on}")
        night = kb.night_report(pred.window_labels, pred.window_s) if pred.task == "SS" else None
        case = Case(pred.task, pred.label, pred.summary, question, age, sex, pred.pooled.mean(0))
        withheld = (emr.UNFAMILIAR if pred.out_of_distribution
                    else emr.UNCERTAIN if max(pred.summary.values()) < answer_above else "")
        if pred.out_of_distribution:  # no reading, rather than a confident one about unfamiliar EEG
            out = {"text": kb.unfamiliar_answer(pred.task, pred.unfamiliar), "fallback": False}
            night = None
        elif withheld:  # below the confidence the head was reliable at on validation: no finding
            out = {"text": kb.uncertain_answer(pred.task, pred.summary, answer_above), "fallback": False}
        else:
            asked_night = night if kb.question_kind(question) == "night" else None
            if self.instruct is not None:  # its text follows the window it read most surely
                w = int(pred.probs[:, pred.classes.index(pred.label)].argmax())
                raw = instruct.answer_case(self.decoder, self.tok, case, tuple(a[w] for a in pred.eeg_tokens),
                                           asked_night)
                out = checked(raw, case, asked_night)
            else:
                out = answer(self.decoder, self.tok, case, night=asked_night)
        text = out["text"] + (f" {trained_on}" if pred.synthetic or self.instruct is not None else "")
        record = emr.Record(pred.task, pred.label, pred.summary, text, age, sex, pred.source, len(pred.probs),
                            [night] if night else [], trained_on, withheld=withheld)
        return {"task": pred.task, "head": pred.head, "label": pred.label, "probs": pred.summary,
                "windows": len(pred.probs), "recording": pred.source, "question": question, "answer": text,
                "fallback": out["fallback"], "decoder_answer": out.get("decoder_answer"),
                "trained_on": trained_on, "synthetic": pred.synthetic, "eeg_only": self.instruct is not None,
                "out_of_distribution": pred.out_of_distribution, "unfamiliar": pred.unfamiliar,
                "uncertain": withheld == emr.UNCERTAIN, "answer_above": answer_above,
                "record": record, "prediction": pred,
                "seconds": {"predict": 0.0, "decode": time.perf_counter() - t0}}
