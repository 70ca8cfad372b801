"""The copilot's clinical knowledge: what each class of each task means, what to suggest, the
questions clinicians ask, and the templated reference answers the decoder learns from.

Written for this project (not copied from any source). Every class of every dataset card has an
entry: a display name (what answers call it), a finding, an interpretation and follow-up
suggestions, each in several phrasings. Texts of one class never name another class of the same
label set (tested), so an answer's class names come only from its slots.

Answers are written with **slots** — ``<pred>`` (the predicted class), ``<alts>`` (the runner-up
classes), ``<prob>`` (its probability), ``<patient>`` (age and sex) and ``<night>`` (the night's
report from a hypnogram) — that :func:`fill` replaces from the prediction. The decoder learns to
write slots, not class names, so its answers name the predicted class by construction; the
faithfulness check still reads the filled text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

UNCERTAIN_BELOW = 0.5  # top probability under which an answer says the reading is uncertain
SLOTS = ("<pred>", "<alts>", "<prob>", "<patient>", "<night>")


@dataclass(frozen=True)
class ClassText:
    name: str                  # as written in answers
    finding: tuple[str, ...]   # what the EEG suggests (after "<pred>")
    meaning: tuple[str, ...]   # clinical interpretation
    advice: tuple[str, ...]    # suggestions / follow-up


def _c(name, finding, meaning, advice):
    return ClassText(name, tuple(finding), tuple(meaning), tuple(advice))


_MOOD_CHECK = "Confirm with a structured mood interview before drawing conclusions."


def _object_image(what: str) -> ClassText:
    """An image category of the THINGS card: what the evoked response allows one to say of it."""
    return _c(f"an image of {what}", [f"a visual evoked response to an image of {what}",
                                      "an object-category pattern in the evoked response"],
              ["The visual system responded to the image.", "Object-category processing appears intact."],
              ["No action is needed.", "Use this response as a baseline for visual assessments."])
CLASSES: dict[str, dict[str, ClassText]] = {
    "ER": {
        "anger": _c("anger", ["a pattern associated with anger, with high arousal and withdrawal of positive affect",
                              "signs of an angry, highly aroused state"],
                    ["Sustained anger can accompany stress, pain or frustration and raises cardiovascular load.",
                     "Anger of this kind is often situational but may point to irritability worth exploring."],
                    ["Offer a calm setting and explore triggers; consider brief anger-management or breathing exercises. " + _MOOD_CHECK,
                     "Screen for irritability and sleep loss, and review with the patient what provoked the episode."]),
        "disgust": _c("disgust", ["a pattern consistent with disgust, an aversive reaction to the stimulus",
                                  "an aversive response of the disgust type"],
                      ["Disgust reactions are usually stimulus-bound and short-lived.",
                       "An aversive reaction like this rarely needs treatment on its own."],
                      ["Note the eliciting stimulus; no intervention is needed unless the reaction is persistent or distressing.",
                       "Reassess if aversive reactions generalise beyond the session. " + _MOOD_CHECK]),
        "fear": _c("fear", ["a fear-related pattern with raised arousal",
                            "activity typical of a fearful, highly aroused state"],
                   ["Recurrent fear responses can be part of an anxiety disorder.",
                    "Fear of this intensity may reflect anticipatory anxiety."],
                   ["Screen for anxiety (for example with GAD-7) and teach grounding or paced breathing.",
                    "Consider a referral for cognitive behavioural therapy if fear responses recur. " + _MOOD_CHECK]),
        "sadness": _c("sadness", ["a pattern associated with sadness and low arousal",
                                  "reduced positive affect typical of sadness"],
                      ["Persistent sadness over weeks may indicate a depressive episode.",
                       "Low mood of this kind deserves a follow-up question about duration and daily function."],
                      ["Screen for depression (for example with PHQ-9) and ask about sleep, appetite and safety.",
                       "Arrange a follow-up visit and encourage behavioural activation. " + _MOOD_CHECK]),
        "neutral": _c("a neutral state", ["no marked emotional engagement",
                                          "a calm, emotionally balanced baseline"],
                      ["A neutral reading is reassuring in a resting recording.",
                       "This baseline state does not call for intervention."],
                      ["No action is needed; keep this recording as the patient's baseline.",
                       "Continue routine care and compare future recordings against this one."]),
        "amusement": _c("amusement", ["a pattern associated with amusement and mirth",
                                      "engagement of the kind seen with humour"],
                        ["Amusement indicates intact positive affect and engagement.",
                         "A response like this suggests reward processing is working as expected."],
                        ["No intervention is needed; positive engagement can support therapy adherence.",
                         "Encourage activities the patient finds enjoyable as part of their routine."]),
        "inspiration": _c("inspiration", ["a pattern associated with inspiration and uplift",
                                          "an uplifted, motivated state"],
                          ["Feeling inspired reflects motivation and positive engagement.",
                           "This state is associated with goal-directed thinking."],
                          ["No intervention is needed; use this motivation in goal setting.",
                           "Build on this engagement when planning rehabilitation or therapy goals."]),
        "joy": _c("joy", ["a pattern associated with joy and high positive affect",
                          "signs of a joyful, positively aroused state"],
                  ["Joy reflects intact reward and positive emotion processing.",
                   "A joyful response is a healthy emotional reaction."],
                  ["No intervention is needed; note the stimulus as a positive resource for the patient.",
                   "Continue routine care; positive states like this support wellbeing."]),
        "tenderness": _c("tenderness", ["a pattern associated with tenderness and warmth",
                                        "a warm, affectionate, low-arousal state"],
                         ["Tenderness reflects social warmth and calm positive affect.",
                          "This state is associated with social bonding and relaxation."],
                         ["No intervention is needed; social contact of this kind can be encouraged.",
                          "Continue routine care; consider involving family in supportive therapy."]),
        "sad": _c("sadness", ["a pattern associated with sadness and low arousal",
                              "reduced positive affect typical of sadness"],
                  ["Persistent sadness over weeks may indicate a depressive episode.",
                   "Low mood of this kind deserves a follow-up question about duration."],
                  ["Screen for depression (for example with PHQ-9) and ask about sleep and appetite.",
                   "Arrange a follow-up visit. " + _MOOD_CHECK]),
        "happy": _c("happiness", ["a pattern associated with happiness and positive affect",
                                  "signs of a happy, engaged state"],
                    ["Happiness reflects intact positive emotion processing.",
                     "A happy response is a healthy emotional reaction."],
                    ["No intervention is needed.", "Continue routine care."]),
        "negative": _c("negative valence", ["an unpleasant emotional state",
                                            "emotional activity on the unpleasant side"],
                       ["Repeated unpleasant states may reflect stress, anxiety or low mood.",
                        "This reading calls for a short conversation about how the patient feels."],
                       ["Ask about mood, stress and sleep; consider PHQ-9 and GAD-7 screening.",
                        "Arrange follow-up if unpleasant states recur. " + _MOOD_CHECK]),
        "positive": _c("positive valence", ["a pleasant emotional state",
                                            "emotional activity on the pleasant side"],
                       ["A pleasant state indicates intact positive affect.",
                        "This reading is reassuring."],
                       ["No intervention is needed.", "Continue routine care."]),
        "HVHA": _c("high valence and high arousal", ["an excited, pleasant state (for example joy or enthusiasm)",
                                                     "pleasant affect with strong activation"],
                   ["This quadrant corresponds to excitement and enthusiasm.",
                    "Pleasant, activated states like this are healthy responses."],
                   ["No intervention is needed; note what elicited the response.",
                    "Continue routine care."]),
        "HVLA": _c("high valence and low arousal", ["a calm, pleasant state (for example contentment or relaxation)",
                                                    "pleasant affect with little activation"],
                   ["This quadrant corresponds to relaxation and contentment.",
                    "Calm, pleasant states like this are reassuring."],
                   ["No intervention is needed; relaxation techniques appear to work for this patient.",
                    "Continue routine care."]),
        "LVHA": _c("low valence and high arousal", ["a tense, unpleasant state (for example anxiety, anger or fear)",
                                                    "unpleasant affect with strong activation"],
                   ["This quadrant corresponds to stress, anxiety or anger.",
                    "Tense, unpleasant states that recur may indicate an anxiety problem."],
                   ["Screen for anxiety (for example with GAD-7) and teach paced breathing. " + _MOOD_CHECK,
                    "Explore stressors and consider a referral if tension persists."]),
        "LVLA": _c("low valence and low arousal", ["a subdued, unpleasant state (for example sadness or fatigue)",
                                                   "unpleasant affect with little activation"],
                   ["This quadrant corresponds to low mood, boredom or fatigue.",
                    "Subdued, unpleasant states over weeks may indicate depression."],
                   ["Screen for depression (for example with PHQ-9) and ask about sleep and energy. " + _MOOD_CHECK,
                    "Arrange a follow-up visit and encourage regular activity."]),
    },
    "SS": {
        "W": _c("wakefulness", ["alpha and beta activity of the awake state", "a wake pattern"],
                ["Wake after sleep onset above about 30 minutes suggests fragmented sleep.",
                 "Time awake in bed reduces sleep efficiency."],
                ["Review sleep hygiene and caffeine; consider insomnia screening if wake time is long.",
                 "Ask about night-time awakenings and their causes."]),
        "N1": _c("stage N1 (light sleep)", ["theta activity and vertex waves of light sleep", "a light-sleep pattern"],
                 ["A large share of light sleep can indicate fragmented or disturbed sleep.",
                  "Light sleep is the transition between wake and deeper sleep."],
                 ["If light sleep dominates, screen for sleep apnoea or periodic limb movements.",
                  "Consider a full polysomnography if the patient reports daytime sleepiness."]),
        "N2": _c("stage N2", ["sleep spindles and K-complexes", "a stage N2 pattern with spindles"],
                 ["N2 normally fills about half of the night.", "Stage N2 is ordinary, stable sleep."],
                 ["No action is needed for this stage on its own.", "Continue routine care."]),
        "N3": _c("stage N3 (deep sleep)", ["high-amplitude slow waves of deep sleep", "a slow-wave sleep pattern"],
                 ["Deep sleep supports physical recovery and declines with age.",
                  "Slow-wave sleep is the most restorative stage."],
                 ["No action is needed; adequate deep sleep is reassuring.",
                  "Continue routine care; protect sleep duration to preserve deep sleep."]),
        "REM": _c("REM sleep", ["low-amplitude mixed-frequency activity with sawtooth waves", "a REM pattern"],
                  ["REM sleep supports memory and emotional processing.",
                   "REM periods lengthen towards the morning."],
                  ["No action is needed unless dream enactment is reported, which warrants a sleep clinic referral.",
                   "Continue routine care."]),
    },
    "MW": {
        "rest": _c("a resting (low) workload", ["alpha-dominant activity of a relaxed, unloaded state",
                                                "little sign of cognitive effort"],
                   ["The patient was not under cognitive load during this recording.",
                    "A relaxed state like this is the expected baseline."],
                   ["No action is needed; use this recording as the resting baseline.",
                    "Continue routine monitoring."]),
        "arithmetic": _c("a high workload (mental arithmetic)", ["frontal theta increase and alpha suppression of mental effort",
                                                                  "signs of sustained cognitive effort"],
                         ["Sustained high workload raises the risk of fatigue and errors.",
                          "The patient was engaged in effortful cognitive work."],
                         ["Schedule breaks during demanding tasks and reassess after rest.",
                          "Monitor for fatigue if high workload persists over long periods."]),
        "low": _c("a low workload", ["little sign of cognitive effort", "an unloaded, relaxed pattern"],
                  ["The task placed little demand on the patient.", "Workload was comfortably low."],
                  ["No action is needed.", "Continue routine monitoring."]),
        "high": _c("a high workload", ["frontal theta increase and alpha suppression of mental effort",
                                       "signs of sustained cognitive effort"],
                   ["Sustained high workload raises the risk of fatigue and errors.",
                    "The task placed a heavy demand on the patient."],
                   ["Schedule breaks and reduce concurrent demands.", "Monitor for fatigue over long sessions."]),
    },
    "MI": {
        "left_hand": _c("left-hand movement", ["mu and beta desynchronisation over the right sensorimotor cortex",
                                               "right-hemisphere motor activity"],
                        ["The intended movement is of the left hand.", "Motor planning for the left hand is preserved."],
                        ["Use this class as a control signal for left-hand rehabilitation or BCI training.",
                         "Continue motor imagery training and track accuracy across sessions."]),
        "right_hand": _c("right-hand movement", ["mu and beta desynchronisation over the left sensorimotor cortex",
                                                 "left-hemisphere motor activity"],
                         ["The intended movement is of the right hand.", "Motor planning for the right hand is preserved."],
                         ["Use this class as a control signal for right-hand rehabilitation or BCI training.",
                          "Continue motor imagery training and track accuracy across sessions."]),
        "left_fist": _c("clenching the left fist", ["mu and beta desynchronisation over the right sensorimotor cortex",
                                                    "right-hemisphere motor activity"],
                        ["The intended movement is of the left hand.", "Motor planning for the left hand is preserved."],
                        ["Use this class as a control signal for left-hand rehabilitation or BCI training.",
                         "Continue motor imagery training and track accuracy across sessions."]),
        "right_fist": _c("clenching the right fist", ["mu and beta desynchronisation over the left sensorimotor cortex",
                                                      "left-hemisphere motor activity"],
                         ["The intended movement is of the right hand.", "Motor planning for the right hand is preserved."],
                         ["Use this class as a control signal for right-hand rehabilitation or BCI training.",
                          "Continue motor imagery training and track accuracy across sessions."]),
        "both_fists": _c("clenching both fists", ["bilateral mu and beta desynchronisation over the sensorimotor cortex",
                                                  "motor activity over both hemispheres"],
                         ["The intended movement involves both hands.", "Bilateral motor planning is preserved."],
                         ["Use this class as a control signal for bimanual training.",
                          "Continue motor imagery training and track accuracy across sessions."]),
        "feet": _c("foot movement", ["mu and beta desynchronisation at the vertex (Cz)", "midline motor activity"],
                   ["The intended movement is of the feet.", "Motor planning for the lower limbs is preserved."],
                   ["Use this class as a control signal for gait rehabilitation or BCI training.",
                    "Continue motor imagery training and track accuracy across sessions."]),
        "tongue": _c("tongue movement", ["activity over the lateral motor face area", "face-area motor activity"],
                     ["The intended movement is of the tongue.", "Motor planning for the face area is preserved."],
                     ["Use this class as a control signal in BCI training.",
                      "Continue motor imagery training and track accuracy across sessions."]),
        "class_1": _c("imagery class 1", ["motor imagery activity", "sensorimotor rhythm changes"],
                      ["The recording's first imagery class was intended.", "Motor imagery is detectable."],
                      ["Map this class to its movement with the recording's protocol.",
                       "Continue motor imagery training."]),
        "class_2": _c("imagery class 2", ["motor imagery activity", "sensorimotor rhythm changes"],
                      ["The recording's second imagery class was intended.", "Motor imagery is detectable."],
                      ["Map this class to its movement with the recording's protocol.",
                       "Continue motor imagery training."]),
    },
    "CM": {
        "face": _c("a face stimulus", ["an N170 over occipito-temporal electrodes typical of face processing",
                                       "an enhanced N170 response"],
                   ["Face-selective processing appears intact.", "The visual system responded as it does to faces."],
                   ["No action is needed; consider repeating with more trials if the response is weak.",
                    "Use this response as a baseline for face-processing assessments."]),
        "house": _c("a house (non-face object) stimulus", ["a smaller N170, typical of object rather than face processing",
                                                           "an object-type visual response"],
                    ["Object processing appears intact.", "The visual system responded as it does to objects."],
                    ["No action is needed.", "Use this response as a baseline for visual assessments."]),
        "target": _c("a rare target stimulus", ["a P300 over parietal electrodes", "an attention-related P300"],
                     ["Attention to rare events appears intact.", "The patient detected the rare stimulus."],
                     ["No action is needed; a delayed P300 would warrant cognitive screening.",
                      "Use the P300 latency as a baseline for cognitive follow-up."]),
        "non_target": _c("a frequent standard stimulus", ["no P300, as expected for frequent stimuli",
                                                          "a standard-stimulus response"],
                         ["The patient did not treat this stimulus as rare.", "This is the expected standard response."],
                         ["No action is needed.", "Continue routine assessment."]),
        **{c: _object_image(what) for c, what in (("animal", "an animal"), ("food", "food"), ("tool", "a tool"),
                                                   ("vehicle", "a vehicle"), ("body_part", "a body part"),
                                                   ("clothing", "clothing"), ("furniture", "furniture"),
                                                   ("plant", "a plant"))},
    },
}

TASK_NAMES = {"ER": "emotion", "SS": "sleep stage", "MW": "mental workload", "MI": "motor imagery",
              "CM": "stimulus category"}
QUESTIONS = {
    "state": {"ER": ["What is the patient's emotional state?", "How is the patient feeling?"],
              "SS": ["What sleep stage is this?", "Which stage of sleep does this show?"],
              "MW": ["What is the patient's mental workload?", "How loaded is the patient?"],
              "MI": ["What movement is the patient imagining?", "Which movement was intended?"],
              "CM": ["What stimulus did the patient see?", "What does the evoked response show?"]},
    "suggest": ["What do you suggest?", "What should we do next?", "Any recommendations?"],
    "summary": ["Summarise the findings.", "Give me a short summary."],
}
NIGHT_QUESTIONS = ["Summarise the night.", "How did the patient sleep?"]


def unfamiliar_answer(task: str, share: float) -> str:
    """What the copilot says instead of a reading when a recording is unlike the training data."""
    return (f"This recording is unlike the data the model was trained on: {100 * share:.0f}% of its windows lie "
            f"outside the range of the training windows, so no {TASK_NAMES[task]} reading is given. Review the "
            "recording by eye, or use a model trained on recordings like it.")


def uncertain_answer(task: str, probs: dict[str, float], answer_above: float, n_alts: int = 2) -> str:
    """What the copilot says instead of a finding when the reading's confidence is below the level
    (``answer_above``) at which the model's readings of validation subjects were reliable."""
    names = classes_of(task)
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])[:n_alts + 1]
    options = ", then ".join(f"{names[k].name} ({100 * v:.0f}%)" for k, v in ranked)
    return (f"The reading is uncertain: the model's confidence ({100 * ranked[0][1]:.0f}%) is below "
            f"{100 * answer_above:.0f}%, the level at which its {TASK_NAMES[task]} readings of validation subjects "
            f"were reliable, so no finding is given. The candidates are {options}. Review the recording by eye, "
            "or repeat it, before acting on it.")


def classes_of(task: str) -> dict[str, ClassText]:
    """The clinical texts of ``task``'s classes; an unknown task is refused."""
    if task not in CLASSES:
        raise ValueError(f"unknown task {task!r}; one of {', '.join(CLASSES)}")
    return CLASSES[task]


def question_kind(question: str) -> str:
    """What a question asks for: the night, a suggestion, a summary, or the state."""
    q = question.lower()
    if "night" in q or "sleep?" in q:
        return "night"
    if any(w in q for w in ("suggest", "recommend", "next", "do ")):
        return "suggest"
    if "summar" in q:
        return "summary"
    return "state"


def patient_phrase(age: int | None, sex: str | None) -> str:
    """How the answer names the patient ("42-year-old woman", "patient")."""
    sex_word = {"F": "woman", "M": "man"}.get((sex or "").upper()[:1], "patient")
    return f"{age}-year-old {sex_word}" if age is not None else ("patient" if sex_word == "patient" else sex_word)


def night_report(stages: list[str], epoch_s: float = 30.0) -> str:
    """One paragraph from a hypnogram (a list of W/N1/N2/N3/REM per epoch)."""
    if not stages:
        return "No sleep epochs were scored."
    stages = list(stages)
    n = len(stages)
    share = {s: stages.count(s) / n for s in ("W", "N1", "N2", "N3", "REM")}
    asleep = [i for i, s in enumerate(stages) if s != "W"]
    onset = (asleep[0] * epoch_s / 60) if asleep else float("nan")
    efficiency = 100 * len(asleep) / n
    parts = ", ".join(f"{s} {100 * share[s]:.0f}%" for s in share)
    return (f"Over {n * epoch_s / 3600:.1f} h in bed, sleep efficiency was {efficiency:.0f}% "
            + (f"with sleep onset after {onset:.0f} min" if asleep else "with no sleep") + f" (stages: {parts}).")


def reference(task: str, label: str, probs: dict[str, float], question: str, rng: np.random.Generator) -> str:
    """A templated answer with slots (see the module docstring), one phrasing drawn by ``rng``."""
    c = classes_of(task)[label]
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    kind = question_kind(question)
    top = max(probs.values())
    opening = pick([f"The EEG of this <patient> shows {pick(c.finding)}, consistent with <pred> (probability <prob>).",
                    f"For this <patient>, the {TASK_NAMES[task]} reading is <pred> (probability <prob>): {pick(c.finding)}.",
                    f"The most likely {TASK_NAMES[task]} is <pred> (probability <prob>), with {pick(c.finding)}."])
    parts = ["<night>", opening] if kind == "night" else [opening]
    if top < UNCERTAIN_BELOW:
        parts.append(pick(["The reading is uncertain; <alts> cannot be excluded.",
                           "This reading is uncertain: the alternatives are <alts>.",
                           "Confidence is low, so the reading is uncertain; consider <alts>."]))
    if kind in ("state", "summary", "night"):
        parts.append(pick(c.meaning))
    if kind in ("suggest", "summary", "night"):
        parts.append(pick(c.advice))
    if top < UNCERTAIN_BELOW and kind != "state":
        parts.append("A repeat recording is advised before acting on it.")
    return " ".join(parts)


def fill(text: str, task: str, label: str, probs: dict[str, float], age: int | None = None, sex: str | None = None,
         night: str | None = None, n_alts: int = 2) -> str:
    """Replace the slots of ``text`` from a prediction."""
    names = classes_of(task)
    alts = [k for k, _ in sorted(probs.items(), key=lambda kv: -kv[1]) if k != label][:n_alts]
    alt_text = " or ".join(f"{names[a].name} ({100 * probs[a]:.0f}%)" for a in alts) or "no other class"
    out = (text.replace("<pred>", names[label].name).replace("<alts>", alt_text)
           .replace("<prob>", f"{100 * probs[label]:.0f}%").replace("<patient>", patient_phrase(age, sex))
           .replace("<night>", night or ""))
    return re.sub(r"\s+", " ", out).strip()


def named_classes(text: str, task: str, label_set) -> set[str]:
    """Labels of ``label_set`` whose display names appear in ``text`` (whole words, longest first,
    so "stage N1 (light sleep)" is not also read as anything shorter)."""
    names = classes_of(task)
    found, rest = set(), text.lower()
    for lab in sorted(label_set, key=lambda k: -len(names[k].name)):
        pattern = r"(?<![\w-])" + re.escape(names[lab].name.lower()) + r"(?![\w-])"
        if re.search(pattern, rest):
            found.add(lab)
            rest = re.sub(pattern, " ", rest)
    return found


def faithfulness(text: str, task: str, label: str, probs: dict[str, float], n_alts: int = 2,
                 uncertain: bool | None = None) -> dict:
    """Does ``text`` name the predicted class, and does it name any other class outside the
    alternatives an uncertain answer must give? (``uncertain``: default, top probability below
    UNCERTAIN_BELOW)"""
    named = named_classes(text, task, probs)
    allowed = {label}
    if uncertain or (uncertain is None and max(probs.values()) < UNCERTAIN_BELOW):
        allowed |= {k for k, _ in sorted(probs.items(), key=lambda kv: -kv[1])[1:n_alts + 1]}
    return {"names_prediction": label in named, "contradiction": bool(named - allowed),
            "says_uncertain": "uncertain" in text.lower()}
