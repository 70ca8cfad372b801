"""The copilot: a small local text decoder that turns a prediction into a clinician's answer and an
assisted medical record.

``knowledge`` (clinical texts with slots), ``corpus`` (training pairs, prompts, the EEG bank),
``decoder`` (tokenizer, decoder, KV cache, pruning, LoRA, training), ``copilot`` (answering with the
faithfulness guard) and ``emr`` (Markdown and FHIR R4).
"""

from eegpt.copilot.copilot import Copilot, answer

__all__ = ["Copilot", "answer"]
