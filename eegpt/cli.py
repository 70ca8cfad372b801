"""The ``eegpt`` command line: one subcommand per command, each command's options from its dataclass
in ``eegpt.arguments`` and, for the training commands, from their configuration dataclass too; what
each command does is in ``eegpt.commands``.

Bad input ends in one line on stderr (``eegpt: <file>: <problem>; <what to do>``) and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from eegpt import arguments as A
from eegpt import commands as C
from eegpt.errors import USER_OS_ERRORS, EEGInputError, TrainingError
from eegpt.options import add_config, config_class


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its options' dataclass, what runs it, the configurations whose
    options it adds (``eegpt.options.CONFIGS``), and the outputs it creates (removed if it fails)."""

    help: str
    options: type
    run: object
    configs: tuple[tuple[str, str], ...] = ()
    outputs: tuple[str, ...] = ()


COMMANDS = {
    "inspect": Command("show a recording's electrodes, what was set aside, rate and events", A.Inspect, C.run_inspect),
    "synth": Command("write the synthetic five-task corpus as EDF + events.tsv", A.Synth, C.run_synth,
                     outputs=("out",)),
    "prepare": Command("preprocess and window a dataset folder into a store", A.Prepare, C.run_prepare,
                       (("preprocess", "preprocessing recipe (eegpt.preprocess.Preprocess)"),), ("out",)),
    "fetch": Command("download a dataset with MNE's fetcher (eegmmidb, sleep-edf)", A.Fetch, C.run_fetch),
    "presets": Command("model sizes and parameter counts (computed from shapes)", A.Listing, C.run_presets),
    "pretrain": Command("pretrain the ETE on prepared stores (resumes in WORKDIR)", A.Pretrain, C.run_pretrain,
                        (("pretrain", "training (eegpt.train.PretrainConfig)"),), ("workdir",)),
    "tokenizer": Command("train NeuroLM's VQ neural tokenizer on prepared stores (resumes in WORKDIR)", A.Tokenizer,
                         C.run_tokenizer, (("tokenizer", "training (eegpt.neural_tokenizer.TokenizerTrainConfig)"),),
                         ("workdir",)),
    "finetune": Command("jointly fine-tune the graph and heads over several stores", A.Finetune, C.run_finetune,
                        (("finetune", "fine-tuning (eegpt.finetune.FinetuneConfig)"),), ("workdir",)),
    "evaluate": Command("score fine-tuned model(s) on a split; several workdirs: mean ± std", A.Evaluate,
                        C.run_evaluate),
    "embed": Command("per-electrode and per-window embeddings to an .npz", A.Embed, C.run_embed),
    "probe": Command("linear probes of a pretrained ETE's features beside band power, by subject", A.Probe,
                     C.run_probe),
    "tsne": Command("t-SNE picture and clustering scores of an embeddings .npz", A.Tsne, C.run_tsne),
    "demo": Command("the whole model on the synthetic corpus, with no data: pretrain, fine-tune, score beside the "
                    "peers, t-SNE, the copilot", A.Demo, C.run_demo, outputs=("workdir",)),
    "benchmark": Command("a real dataset's protocol: the model beside its peers", A.Benchmark, C.run_benchmark,
                         outputs=("workdir",)),
    "copilot-train": Command("train the copilot's text decoder on the clinical corpus (--instruct: to answer from "
                             "EEG alone)", A.CopilotTrain, C.run_copilot_train,
                             (("copilot", "training (eegpt.copilot.decoder.CopilotTrainConfig)"),
                              ("instruct", "instruction tuning, with --instruct (eegpt.copilot.instruct.InstructConfig)")),
                             ("workdir",)),
    "copilot": Command("a raw EEG file -> prediction -> clinician answer (and an EMR)", A.Copilot, C.run_copilot),
    "chat": Command("questions and follow-ups about a recording in the terminal, with cited passages", A.Chat,
                    C.run_chat),
    "stream": Command("live EEG: a prediction for every new second (a file replayed, or lsl:NAME)", A.Stream,
                      C.run_stream),
    "quantize": Command("an int8 copy of a model directory (weights per channel; a quarter the size)", A.Quantize,
                        C.run_quantize),
    "serve": Command("the copilot as a local web page: traces, probabilities, answer, chat, EMR", A.Serve,
                     C.run_serve),
    "predict": Command("a trained model's per-window probabilities and summary for a recording", A.Predict,
                       C.run_predict),
    "cards": Command("list the dataset cards", A.Listing, C.run_cards),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``eegpt`` command line: one subcommand per command, options from the dataclasses."""
    p = argparse.ArgumentParser(prog="eegpt", description="EEGPT: read, simulate and prepare EEG for "
                                "an autoregressive EEG generalist.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        s = sub.add_parser(name, help=command.help, description=command.help)
        add_config(s, command.options)
        for config, title in command.configs:
            add_config(s.add_argument_group(title), config_class(config))
        s.set_defaults(fn=command.run, outputs=list(command.outputs))
    return p


def main(argv=None) -> int:
    """Run one ``eegpt`` command; returns the exit status (2 and one line on stderr for bad input)."""
    import shutil

    args = build_parser().parse_args(argv)
    # outputs this run creates: removed again if it fails, so a failed command leaves nothing behind
    created = [Path(getattr(args, k)) for k in getattr(args, "outputs", []) if not Path(getattr(args, k)).exists()]
    try:
        args.fn(args)
    except BrokenPipeError:  # the reader went away (`eegpt presets | head`): nothing left to say
        return 0
    except (EEGInputError, TrainingError, OSError) as err:
        user_os = isinstance(err, OSError) and err.errno in USER_OS_ERRORS and err.filename is not None
        if isinstance(err, OSError) and not user_os:
            raise  # an OSError of our own making (a path we built wrong) is a bug: its traceback stays
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        if user_os:  # an unwritable workdir, a full disk, a file where a folder should be
            print(f"eegpt: {err.filename}: {err.strerror or err}", file=sys.stderr)
        else:
            print(f"eegpt: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eegpt: interrupted; completed outputs are kept, rerun to finish", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
