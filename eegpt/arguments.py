"""Each ``eegpt`` command's own options, one dataclass per command: the one source of their names,
types, defaults and help (``eegpt.options.add_config`` turns a field into an option, its trailing
comment into the help). The training commands add their configuration's options beside these
(``Command.configs``: ``Preprocess``, ``PretrainConfig``, ``FinetuneConfig``, ``CopilotTrainConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from eegpt import TASKS


def _readers():
    from eegpt.datasets import READERS

    return sorted(READERS)


def _task():
    return field(default=None, metadata={"choices": lambda: TASKS})


def _positional(metavar: str | None = None):
    return field(metadata={"positional": True, **({"metavar": metavar} if metavar else {})})


@dataclass(kw_only=True)
class Placing:
    """How a recording's positioned channels are read, for the commands a head answers."""

    montage: str | None = field(default=None, metadata={"metavar": "NAME|FILE"})  # positions for numbered channels: an MNE standard montage (GSN-HydroCel-129) or a file
    place: Literal["nearest", "splines", "montage"] = "nearest"  # each positioned channel as its nearest 10-10 electrode (samples as recorded), at its own 10-10 site by spherical splines, or interpolated onto the answering head's montage (for caps off the 10-10 sites)


@dataclass(kw_only=True)
class Inspect:
    """``eegpt inspect``'s options."""

    file: str = _positional()  # a recording (any format MNE reads, a table, a dataset's own layout)
    json: bool = False  # print a JSON object
    sfreq: float | None = None  # sampling rate, for tables without timestamps
    ch_names: str | None = None  # comma-separated channel names, for tables without a header
    drop_bad: bool = False  # set flat and non-finite channels aside instead of refusing the file
    strict: bool = False  # refuse a file with a channel that is no known electrode (by default it is set aside)
    format: str | None = field(default=None, metadata={"choices": _readers})  # a dataset's own file layout (DEAP pickles, SEED-IV / Cho 2017 / BCI IV-1 .mat)
    montage: str | None = field(default=None, metadata={"metavar": "NAME|FILE"})  # positions for numbered channels: an MNE standard montage (GSN-HydroCel-129) or a file
    place: Literal["nearest", "splines"] = "nearest"  # each positioned channel as its nearest 10-10 electrode (samples as recorded), or at its own 10-10 site by spherical splines


@dataclass(kw_only=True)
class Synth:
    """``eegpt synth``'s options."""

    out: str  # output folder
    subjects: int = 10  # subjects per task
    seed: int = 0  # the same seed writes the same bytes
    tasks: str | None = None  # comma-separated subset of ER,MI,MW,SS,CM
    workers: int = 2  # processes writing recordings


@dataclass(kw_only=True)
class Prepare:
    """``eegpt prepare``'s own options (the recipe's come from ``Preprocess``)."""

    card: str = _positional()  # dataset card name (see `eegpt cards`) or path to a card .toml
    source: str  # the dataset folder, as downloaded
    out: str  # store folder (a partial one is completed)
    workers: int = 2  # processes reading recordings
    skip_bad: bool = False  # leave out unreadable recordings
    overwrite: bool = False  # replace a store of another card or recipe at --out
    continuous: bool = False  # whole recordings, labelled or not, as unlabelled windows (data for pretraining)
    quiet: bool = False  # no progress bar


@dataclass(kw_only=True)
class Fetch:
    """``eegpt fetch``'s options."""

    card: str = _positional()  # eegmmidb or sleep-edf
    out: str  # where the files go
    subjects: list[int] = field(default_factory=lambda: [1])  # subject numbers (eegmmidb 1-109, sleep-edf 0-82)


@dataclass(kw_only=True)
class Listing:
    """The options of the listings (``eegpt presets``, ``eegpt cards``)."""

    json: bool = False  # print a JSON object


@dataclass(kw_only=True)
class Pretrain:
    """``eegpt pretrain``'s own options (training's come from ``PretrainConfig``)."""

    workdir: str  # the run: checkpoints, logs, metrics.json (rerun to resume)
    data: list[str] | None = None  # prepared store folders
    recipe: Literal["foundation"] | None = None  # foundation: every dataset under --source read whole, no benchmark's held-out subject
    source: str | None = None  # with --recipe foundation: the folder holding the datasets (../shared/data)
    export: str | None = None  # with --recipe foundation: write the float16 encoder here (eegpt/weights/foundation ships with the package)
    quiet: bool = False  # no progress bar


@dataclass(kw_only=True)
class Tokenizer:
    """``eegpt tokenizer``'s own options (training's come from ``TokenizerTrainConfig``)."""

    workdir: str  # the run: checkpoints, logs, metrics.json (rerun to resume)
    data: list[str] | None = None  # prepared store folders
    recipe: Literal["foundation"] | None = None  # foundation: the foundation ETE's data (every dataset under --source read whole, no benchmark's held-out subject)
    source: str | None = None  # with --recipe foundation: the folder holding the datasets (../shared/data)
    align_with: str | None = None  # with --align: a copilot decoder (eegpt copilot-train) whose token embeddings the codes are aligned to
    quiet: bool = False  # no progress bar


@dataclass(kw_only=True)
class Finetune:
    """``eegpt finetune``'s own options (fine-tuning's come from ``FinetuneConfig``)."""

    ete: str  # a pretraining workdir (eegpt pretrain), or foundation: the encoder shipped with the package
    data: list[str]  # prepared stores, one per dataset
    workdir: str  # the run; the model directory is WORKDIR/model
    quiet: bool = False  # no progress bar


@dataclass(kw_only=True)
class Evaluate:
    """``eegpt evaluate``'s options."""

    workdir: list[str]  # finetune workdir(s), e.g. one per seed
    data: list[str]  # prepared stores
    split: str = "test"  # the split scored
    json: bool = False  # print a JSON object


@dataclass(kw_only=True)
class Embed:
    """``eegpt embed``'s options."""

    ete: str  # a pretraining workdir or a model directory
    data: list[str]  # prepared stores
    out: str  # output .npz
    split: str | None = None  # only this split (default: every window)
    overwrite: bool = False  # replace an existing --out


@dataclass(kw_only=True)
class Probe:
    """``eegpt probe``'s options."""

    ete: str  # a pretraining workdir (eegpt pretrain), or foundation: the encoder shipped with the package
    data: list[str]  # prepared stores (one montage each)
    folds: int = 5  # cross-validation folds, grouped by subject
    json_out: str | None = None  # write the scores to this .json
    overwrite: bool = False  # replace an existing --json-out


@dataclass(kw_only=True)
class Tsne:
    """``eegpt tsne``'s options."""

    embeddings: str = _positional()  # an embeddings .npz (eegpt embed)
    out: str  # output .png (scores go beside it as .json)
    key: str = "auto"  # array to embed: pooled, mean or auto (pooled if present)
    marker: Literal["task", "subject"] = "task"  # what the markers show
    perplexity: float = 30.0  # t-SNE's perplexity
    max_points: int = 3000  # windows drawn at most
    seed: int = 0  # t-SNE's and the clustering's seed


@dataclass(kw_only=True)
class Demo:
    """``eegpt demo``'s options."""

    workdir: str  # the run; the model directory is WORKDIR/model
    quick: bool = False  # a smaller corpus and fewer steps (a few minutes)
    specialists: bool | None = None  # EEGNet and ShallowFBCSPNet beside the classical peers (default: in the full demo when the peers extra is installed)
    seeds: list[int] | None = None  # one demo per seed in WORKDIR/seed-S and WORKDIR/summary.json: mean ± std over seeds, the targets checked
    quiet: bool = False  # no progress bars


@dataclass(kw_only=True)
class Benchmark:
    """``eegpt benchmark``'s options."""

    name: str = _positional()  # eegmat, eegmmidb, eegmmidb-s001, n170 or p300
    source: str  # the dataset folder, as downloaded
    workdir: str  # the run: results.json, each seed's and fold's model directory
    ete: str | None = None  # foundation (the default, where it saw none of the protocol's held-out subjects): the shipped ETE; per-dataset: one pretrained per fold on its training windows; or a pretraining workdir to reuse
    preset: str = "base"  # the per-dataset ETE's size
    pretrain_steps: int = 1000  # the per-dataset ETE's pretraining steps
    finetune_steps: int = 600  # fine-tuning steps
    seeds: list[int] = field(default_factory=lambda: [0])  # one run per seed; mean ± std over them
    train_subjects: int | None = None  # keep K of the training subjects, drawn anew per seed (label efficiency; default: all)
    specialists: bool | None = None  # EEGNet and ShallowFBCSPNet beside the classical peers (default: when the peers extra is installed)
    align_subjects: bool = False  # Euclidean alignment of each subject's windows, for EEGPT and every peer alike (transductive: reads the scored subjects' unlabelled windows)
    quiet: bool = False  # no progress bars


@dataclass(kw_only=True)
class CopilotTrain:
    """``eegpt copilot-train``'s own options (training's come from ``CopilotTrainConfig``)."""

    workdir: str  # the decoder's directory
    finetuned: str | None = None  # a fine-tuning workdir (or demo workdir): its pooled embeddings feed the EEG prefix; with --instruct, the model whose windows teach the decoder
    instruct: bool = False  # NeuroLM's instruction tuning: the decoder reads each window's EEG tokens, not the class, and states the class itself (needs --finetuned; eegpt copilot --eeg-only answers with it)
    quiet: bool = False  # no progress bar


@dataclass(kw_only=True)
class Asking(Placing):
    """What the commands that ask about a recording share."""

    model: str | None = None  # a model directory or demo workdir (default: runs/demo, then runs/demo-quick)
    task: str | None = _task()  # which task's head answers (default: the one whose montages match the file best)
    seconds: float | None = None  # only the first SECONDS of the recording


@dataclass(kw_only=True)
class Consulting(Asking):
    """What the copilot's commands share: the recording, the decoder and the patient."""

    file: str = _positional()  # the recording
    copilot: str | None = None  # the decoder's directory (default: MODEL/copilot)
    eeg_only: bool = False  # answer from the EEG alone: the instruction-tuned decoder (default MODEL/copilot-eeg-only) reads the windows and states the class; the heads' class is not used
    age: int | None = None  # years, 0-120
    sex: str | None = None  # F, M, female or male


@dataclass(kw_only=True)
class Copilot(Consulting):
    """``eegpt copilot``'s options."""

    question: str | None = None  # the question (default: the task's state question)
    emr_out: str | None = None  # PATH.md (Markdown) or PATH.json (FHIR R4 Bundle)
    overwrite: bool = False  # replace an existing --emr-out
    json: bool = False  # print a JSON object


@dataclass(kw_only=True)
class Chat(Consulting):
    """``eegpt chat``'s options."""

    question: str | None = None  # the first question (default: the task's state question)
    docs: str | None = None  # a folder of Markdown guidelines to retrieve and cite beside the knowledge base
    transcript: str | None = None  # write the questions, answers and citations to this JSON file
    overwrite: bool = False  # replace an existing --transcript


@dataclass(kw_only=True)
class Stream:
    """``eegpt stream``'s options."""

    source: str = _positional()  # a recording to replay, or lsl:NAME for a Lab Streaming Layer stream
    model: str | None = None  # a model directory or demo workdir (default: runs/demo, then runs/demo-quick)
    task: str | None = _task()  # which task's head answers (default: by the montage)
    head: str | None = None  # a head by dataset name
    speed: float = 1.0  # replay at this many times real time (0: as fast as possible)
    seconds: float | None = None  # stop after this many seconds of signal
    csv_out: str | None = None  # one row per second: end_s, label, one probability column per class
    overwrite: bool = False  # replace an existing --csv-out


@dataclass(kw_only=True)
class Quantize:
    """``eegpt quantize``'s options."""

    out: str  # the new model directory
    model: str | None = None  # a model directory or demo workdir (default: runs/demo, then runs/demo-quick)
    overwrite: bool = False  # replace an existing --out


@dataclass(kw_only=True)
class Serve:
    """``eegpt serve``'s options."""

    model: str | None = None  # a model directory or demo workdir (default: runs/demo, then runs/demo-quick)
    copilot: str | None = None  # the decoder's directory (default: MODEL/copilot)
    host: str = "127.0.0.1"  # address to bind (127.0.0.1: this machine only)
    port: int = 7860  # the page's port
    docs: str | None = None  # a folder of Markdown guidelines the chat retrieves and cites
    recordings: str | None = None  # a folder of recordings to pick from (besides uploading)


@dataclass(kw_only=True)
class Predict(Asking):
    """``eegpt predict``'s options."""

    file: str = _positional()  # the recording
    head: str | None = None  # a head by dataset name (see the model's config.json)
    json: bool = False  # print everything as JSON
    json_out: str | None = None  # write the JSON to this file
    csv: str | None = None  # write one row per window (start, label, probabilities) to this .csv
    plot: str | None = None  # write class probabilities over time (a hypnogram for sleep) to this .png
    overwrite: bool = False  # replace existing output files
