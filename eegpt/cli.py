"""The ``eegpt`` command line.

Bad input ends in one line on stderr (``eegpt: <file>: <problem>; <what to do>``) and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eegpt import TASKS
from eegpt.datasets import READERS
from eegpt.errors import USER_OS_ERRORS, EEGInputError, TrainingError, atomic_write
from eegpt.options import add_config, check_output, config_class, config_from


def _cmd_inspect(args) -> None:
    from eegpt.recording import read

    rec = read(args.file, sfreq=args.sfreq, drop_bad=args.drop_bad, strict=args.strict, distributed=args.format,
               montage=args.montage, place=args.place,
               ch_names=args.ch_names.split(",") if args.ch_names else None)
    if args.json:
        print(json.dumps(rec.summary(), indent=2))
        return
    print(rec.describe())


def _cmd_synth(args) -> None:
    from tqdm import tqdm

    from eegpt.synth import write_corpus

    tasks = args.tasks.split(",") if args.tasks else list(TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise EEGInputError(f"--tasks: unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    if args.subjects < 1:
        raise EEGInputError("--subjects: need at least one subject")
    with tqdm(total=args.subjects * len(tasks), desc="synth", unit="recording", leave=False) as bar:
        paths = write_corpus(args.out, args.subjects, args.seed, tasks, progress=bar.update,
                             workers=args.workers)
    print(f"wrote {len(paths)} recordings ({args.subjects} subjects x {', '.join(tasks)}) to {args.out}")
    print(f"prepare one with: eegpt prepare synthetic-{tasks[0].lower()} --source {args.out} --out STORE")


def _cmd_prepare(args) -> None:
    from eegpt.preprocess import Preprocess
    from eegpt.store import prepare

    cfg = config_from(Preprocess, args)
    store = prepare(args.card, args.source, args.out, cfg, workers=args.workers,
                    skip_bad=args.skip_bad, progress=not args.quiet, overwrite=args.overwrite,
                    continuous=args.continuous)
    idx = store.index
    print(f"{idx['card']}: {idx['n_samples']} windows of {idx['window_s']:g} s from "
          f"{len(idx['shards'])} recordings, {len(idx['subjects'])} subjects -> {store.path}")
    for part, counts in sorted(idx["counts"].items()):
        print(f"  {part:<10} " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    for rel, why in idx["skipped"].items():
        print(f"  skipped {rel}: {why}")


def _cmd_fetch(args) -> None:
    from eegpt.cards import fetch, load_card

    card = load_card(args.card)
    try:
        out = fetch(card, args.out, args.subjects)
    except (OSError, RuntimeError, ValueError) as err:
        if isinstance(err, EEGInputError):
            raise
        raise EEGInputError(f"{card.name}: download failed ({err}); check the network or get it "
                            f"from {card.source}") from None
    print(f"downloaded {card.name} subjects {args.subjects} to {out}")
    print(f"prepare it with: eegpt prepare {card.name} --source {out} --out STORE")


def _cmd_presets(args) -> None:
    from eegpt.presets import PRESETS, counts, print_presets

    table = {name: counts(name) for name in PRESETS}
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print_presets(table)


def _cmd_pretrain(args) -> None:
    from eegpt.presets import PRESETS
    from eegpt.train import PretrainConfig, pretrain

    if args.preset not in PRESETS:
        raise EEGInputError(f"--preset: unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
    cfg = config_from(PretrainConfig, args)
    if (args.source or args.export) and args.recipe != "foundation":
        raise EEGInputError("--source and --export belong to --recipe foundation; give --data STORE ... otherwise")
    if args.recipe == "foundation":
        from eegpt.finetune import load_ete
        from eegpt.foundation import export, pretrain_foundation

        if not args.source or args.data:
            raise EEGInputError("--recipe foundation reads --source DATA (the folder holding the datasets), not --data")
        pretrain_foundation(args.source, args.workdir, cfg, progress=not args.quiet)
        m = json.loads((Path(args.workdir) / "metrics.json").read_text())
        print(f"model card: {Path(args.workdir) / 'MODEL_CARD.md'}")
        if args.export:
            exported = export(args.workdir, load_ete(args.workdir)[1], args.export)
            print(f"exported the encoder to {exported} (float16)")
    elif not args.data:
        raise EEGInputError("give --data STORE [STORE ...], or --recipe foundation --source DATA")
    else:
        m = pretrain(cfg, args.data, args.workdir, progress=not args.quiet)
    gain = lambda ref: f"{(1 - m['val_mse'] / m[ref]):+.1%}"  # noqa: E731
    print(f"step {m['step']} (resumed from {m['resumed_from']}): held-out MSE {m['val_mse']:.5f}; "
          f"zero {m['zero_mse']:.5f} ({gain('zero_mse')} better), persistence {m['persistence_mse']:.5f} "
          f"({gain('persistence_mse')})" + (f", linear AR {m['linear_ar_mse']:.5f} ({gain('linear_ar_mse')})"
                                            if "linear_ar_mse" in m else ""))
    print(f"wrote {Path(args.workdir) / 'metrics.json'}")


def _cmd_finetune(args) -> None:
    from eegpt.finetune import FinetuneConfig, finetune, kept_model

    ft = config_from(FinetuneConfig, args)
    out = finetune(args.ete, args.data, args.workdir, ft, progress=not args.quiet)
    print(f"fine-tuned {out['steps_run']} steps ({'stopped early' if out['stopped_early'] else 'to the end'}); "
          f"kept step {out['best_step']}, selected on {out['selected_on']}")
    at_best = next((h for h in out["history"] if h["step"] == out["best_step"]), {})
    for name, kept in kept_model(out).items():
        val = at_best.get("val_balanced_accuracy", {}).get(name)
        print(f"  {name:<22} " + (f"val balanced accuracy {val:.3f}; " if val is not None else "")
              + f"kept: {kept['text']}")
    print(f"wrote the model directory {out['model']} and {Path(args.workdir) / 'finetune.json'}")
    print(f"score it with: eegpt evaluate --workdir {args.workdir} --data {' '.join(args.data)}; "
          f"ask it about a recording with: eegpt predict FILE --model {out['model']}")


def _cmd_evaluate(args) -> None:
    from eegpt.finetune import evaluate
    from eegpt.metrics import mean_std, print_table

    runs = args.workdir
    per_run = [evaluate(w, args.data, args.split, plots=not args.json) for w in runs]
    out = {"split": args.split, "runs": runs, "datasets": {}}
    for name in per_run[0]:
        results = [r[name] for r in per_run]
        out["datasets"][name] = results[0] if len(results) == 1 else {
            "task": results[0]["task"], "classes": results[0]["classes"], **mean_std(results), "per_run": results}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print_table(out["datasets"])
    for name in per_run[0]:
        for w, r in zip(runs, per_run):
            k = r[name].get("kept")
            print(f"{name} kept{'' if len(runs) == 1 else f' ({w})'}: "
                  + (k["text"] if k else "not recorded (a model directory without its finetune.json)"))
    if len(runs) == 1:
        print("confusion matrices: " + ", ".join(r["confusion_plot"] for r in per_run[0].values()))
        print("coverage-accuracy curves: " + ", ".join(r["coverage_plot"] for r in per_run[0].values()))
    print("ECE is of the temperature-scaled probabilities (each head's temperature fitted on its validation "
          "windows); ECE (T = 1) before scaling")


def _cmd_embed(args) -> None:
    from eegpt.embed import embed

    check_output(args.out, args.overwrite)
    info = embed(args.ete, args.data, args.out, split=args.split)
    print(f"wrote {info['windows']} windows' embeddings ({', '.join(info['arrays'])}) to {args.out}")


def _cmd_probe(args) -> None:
    from eegpt.embed import print_probes, probe

    check_output(args.json_out, args.overwrite)
    r = probe(args.ete, args.data, folds=args.folds)
    if args.json_out:
        atomic_write(args.json_out, lambda p: p.write_text(json.dumps(r, indent=2) + "\n"))
    print_probes(r)
    print(f"(balanced accuracy of linear probes, {args.folds}-fold cross-validation grouped by subject"
          + (f"; wrote {args.json_out})" if args.json_out else ")"))


def _cmd_tsne(args) -> None:
    from eegpt.embed import tsne

    out = tsne(args.embeddings, args.out, key=args.key, marker=args.marker, perplexity=args.perplexity,
               max_points=args.max_points, seed=args.seed)
    print(f"wrote {args.out} ({out['points']} points of {out['key']})")
    for task, c in out["clustering"].items():
        print(f"  {task:<4} k-means ARI {c['kmeans_ari']:.3f}, spectral ARI {c['spectral_ari']:.3f}, "
              f"silhouette {c['silhouette']:.3f}")
    print(f"wrote {out['json']}")


def _cmd_demo(args) -> None:
    from eegpt.demo import demo, print_table

    if args.seeds:
        from eegpt.demo import demo_seeds, print_summary

        if min(args.seeds) < 0 or len(set(args.seeds)) < len(args.seeds):
            raise EEGInputError(f"--seeds {' '.join(map(str, args.seeds))}: seeds must be distinct and not negative")

        summary = demo_seeds(args.workdir, args.seeds, quick=args.quick, progress=not args.quiet,
                             specialists=args.specialists)
        print_summary(summary)
        print(f"wrote {Path(args.workdir) / 'summary.json'} (each seed's report in seed-S/report.json)")
        return
    report = demo(args.workdir, quick=args.quick, progress=not args.quiet, specialists=args.specialists)
    print_table(report)
    print(f"wrote {Path(args.workdir) / 'report.json'} and {report['tsne']}")


def _cmd_benchmark(args) -> None:
    from eegpt.benchmark import benchmark, print_results

    r = benchmark(args.name, args.source, args.workdir, ete=args.ete, preset=args.preset,
                  pretrain_steps=args.pretrain_steps, finetune_steps=args.finetune_steps, seeds=args.seeds,
                  specialists=args.specialists, train_subjects=args.train_subjects, progress=not args.quiet)

    print_results(r)
    print(f"wrote {Path(args.workdir) / 'results.json'}")


def _cmd_copilot_train(args) -> None:
    from eegpt.copilot.corpus import eeg_bank
    from eegpt.copilot.decoder import CopilotTrainConfig, train

    cfg = config_from(CopilotTrainConfig, args)
    bank = None
    if args.finetuned:  # the prefix learns from real pooled embeddings of the training windows
        from eegpt.model import load
        from eegpt.store import open_stores

        meta = Path(args.finetuned) / "finetune.json"
        if not meta.exists():
            raise EEGInputError(f"{args.finetuned}: not a fine-tuning workdir (finetune.json missing)")
        stores = open_stores([d["store"] for d in json.loads(meta.read_text())["datasets"]])
        bank = eeg_bank(load(args.finetuned), stores)
    r = train(args.workdir, cfg, eeg_bank=bank, progress=not args.quiet)
    print(f"copilot: {r['parameters']:,} parameters, final loss {r['history'][-1]['loss']:.3f}, "
          f"{r['seconds']:.0f} s -> {args.workdir}")


def _cmd_copilot(args) -> None:
    from eegpt.copilot import Copilot, emr
    from eegpt.copilot.copilot import check_age, normalise_sex

    check_age(args.age)  # arguments first: nothing runs on a bad one
    normalise_sex(args.sex)
    if args.emr_out and Path(args.emr_out).suffix.lower() not in (".md", ".markdown", ".json"):
        raise EEGInputError(f"{args.emr_out}: --emr-out must end in .md (Markdown) or .json (FHIR Bundle)")
    check_output(args.emr_out, args.overwrite, "an EMR")
    r = Copilot(_model_or_default(args.model), args.copilot).ask(args.file, task=args.task, age=args.age, sex=args.sex,
                                              question=args.question, seconds=args.seconds,
                                              montage=args.montage, place=args.place)
    if args.emr_out:
        emr.write(r["record"], args.emr_out)
    if args.json:
        print(json.dumps({k: r[k] for k in ("task", "head", "label", "probs", "windows", "question", "answer",
                                             "fallback", "decoder_answer", "trained_on", "synthetic",
                                             "out_of_distribution", "unfamiliar", "uncertain", "answer_above")}, indent=2))
        return
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["probs"].items(), key=lambda kv: -kv[1])[:3])
    print(f"{Path(args.file).name}: {r['task']} via {r['head']} over {r['windows']} windows ({top})"
          + (f"; {100 * r['unfamiliar']:.0f}% of the windows unlike the training data" if r["out_of_distribution"] else "")
          + (f"; below the {100 * r['answer_above']:.0f}% it answers at" if r["uncertain"] else ""))
    print(f"Q: {r['question']}\nA: {r['answer']}")
    if r["fallback"]:
        print("(the decoder's answer failed the faithfulness check; this is the templated answer)")
    if not r["synthetic"]:
        print(r["trained_on"])
    if args.emr_out:
        print(f"EMR -> {args.emr_out}")


def _cmd_chat(args) -> None:
    from eegpt.copilot import Copilot
    from eegpt.copilot.dialogue import Conversation, Library

    check_output(args.transcript, args.overwrite, "a transcript")
    library = Library(args.docs)  # a bad --docs folder is refused before the model loads
    talk = Conversation(Copilot(_model_or_default(args.model), args.copilot), args.file, task=args.task,
                        age=args.age, sex=args.sex, seconds=args.seconds, library=library,
                        montage=args.montage, place=args.place)
    interactive = sys.stdin.isatty()
    first = talk.ask(args.question)
    print(f"{Path(args.file).name}: {first['task']} via {first['head']} over {first['windows']} windows")
    print(f"Q: {first['question']}\nA: {first['answer']}")
    if interactive:
        print("(ask a follow-up question; an empty line, 'quit' or Ctrl-D ends)")
    while True:
        try:
            question = input("Q: " if interactive else "").strip()
        except EOFError:
            break
        if question.lower() in ("", "quit", "exit"):
            break
        if not interactive:
            print(f"Q: {question}")
        print(f"A: {talk.ask(question)['answer']}")
    if args.transcript:
        atomic_write(args.transcript, lambda t: t.write_text(json.dumps(talk.turns, indent=2) + "\n"))
        print(f"transcript -> {args.transcript}")


def _cmd_stream(args) -> None:
    import numpy as np

    from eegpt.stream import stream

    check_output(args.csv_out, args.overwrite, "a stream's CSV")
    if args.seconds is not None and args.seconds <= 0:
        raise EEGInputError(f"--seconds {args.seconds}: must be positive")

    def show(tick):
        top = sorted(tick.probs.items(), key=lambda kv: -kv[1])[:3]
        flag = "  unlike the training data" if tick.unfamiliar else ""
        print(f"{tick.end_s:8.1f} s  {tick.label:<12} " + "  ".join(f"{k} {v:.2f}" for k, v in top)
              + f"  ({sum(tick.ms.values()):.1f} ms){flag}", flush=True)

    ticks = stream(args.source, _model_or_default(args.model), task=args.task, head=args.head, speed=args.speed,
                   seconds=args.seconds, on_tick=show)
    ms = {k: float(np.median([t.ms[k] for t in ticks[1:] or ticks])) for k in ("preprocess", "model")}
    print(f"{len(ticks)} seconds predicted; median per new second {sum(ms.values()):.1f} ms "
          f"(preprocess {ms['preprocess']:.1f}, model {ms['model']:.1f}; the first second compiles)")
    if args.csv_out:
        classes = list(ticks[0].probs)
        rows = [",".join(["end_s", "label", *classes])] + [
            ",".join([f"{t.end_s:.3f}", t.label, *(f"{t.probs[c]:.6f}" for c in classes)]) for t in ticks]
        atomic_write(args.csv_out, lambda p: p.write_text("\n".join(rows) + "\n"))
        print(f"-> {args.csv_out}")


def _cmd_quantize(args) -> None:
    from eegpt.quantize import disk_bytes, quantize_model

    out = quantize_model(_model_or_default(args.model), args.out, args.overwrite)
    print(f"int8 model ({disk_bytes(out) / 1e6:.2f} MB) -> {out}")


def _cmd_serve(args) -> None:
    from eegpt.serve import serve

    _, url = serve(_model_or_default(args.model), args.copilot, args.host, args.port, args.docs, args.recordings,
                   block=False)
    print(f"EEGPT copilot at {url} (Ctrl-C stops it)")
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped")


def _model_or_default(given) -> Path:
    """``--model``, else the demo's model (``runs/demo``, then ``runs/demo-quick``)."""
    from eegpt.model import model_dir

    if given:
        return model_dir(given)
    for d in ("runs/demo", "runs/demo-quick"):
        try:
            return model_dir(d)
        except EEGInputError:
            continue
    raise EEGInputError("no model: run `eegpt demo --workdir runs/demo-quick --quick` first, or pass --model DIR")


def _cmd_predict(args) -> None:
    from eegpt.predict import predict, write_outputs

    for out in (args.csv, args.plot, args.json_out):
        check_output(out, args.overwrite)
    pred = predict(_model_or_default(args.model), args.file, task=args.task, head=args.head, seconds=args.seconds,
                   montage=args.montage, place=args.place)
    write_outputs(pred, args.json_out, args.csv, args.plot)
    if args.json:
        print(json.dumps(pred.to_dict(), indent=2))
        return
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(pred.summary.items(), key=lambda kv: -kv[1]))
    print(f"{Path(args.file).name}: {pred.task} via {pred.head}, {len(pred.probs)} windows of {pred.window_s:g} s"
          f" ({pred.read_as})")
    print(f"  {pred.label}  ({top})")
    if pred.out_of_distribution:
        print(f"  warning: {100 * pred.unfamiliar:.0f}% of the windows are unlike the data the model was trained on; "
              "the reading above is not to be relied on")
    print(f"  {pred.trained_on}")
    for out in (args.json_out, args.csv, args.plot):
        if out:
            print(f"wrote {out}")


def _cmd_cards(args) -> None:
    from eegpt.cards import card_names, load_card

    cards = [load_card(n) for n in card_names()]
    if args.json:
        print(json.dumps({c.name: {"task": c.task, "classes": list(c.classes), "prepare": c.prepare,
                                   "title": c.title, "source": c.source, "licence": c.licence}
                          for c in cards}, indent=2))
        return
    for c in cards:
        status = "" if c.prepare else "  (cannot be prepared yet)"
        print(f"{c.name:<14} {c.task}  {len(c.classes)} classes  {c.title}{status}")


def _add_placing(s, model: bool = True) -> None:
    """--montage and --place, for the commands that read a recording (``model``: one a head answers)."""
    s.add_argument("--montage", metavar="NAME|FILE",
                   help="positions for numbered channels: an MNE standard montage (GSN-HydroCel-129) or a file")
    places = ("nearest", "splines", "montage") if model else ("nearest", "splines")
    s.add_argument("--place", choices=places, default="nearest",
                   help="positioned channels as the nearest 10-10 electrode each, samples as recorded (default), or "
                        "each given its own 10-10 site with the samples there interpolated by spherical splines"
                        + (", or interpolated onto the answering head's montage (montage: for caps that sit off the "
                           "10-10 sites)" if model else ""))


def build_parser() -> argparse.ArgumentParser:
    """The ``eegpt`` command line: one subcommand per command, training options from their configs."""
    p = argparse.ArgumentParser(prog="eegpt", description="EEGPT: read, simulate and prepare EEG for "
                                "an autoregressive EEG generalist.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("inspect", help="show a recording's electrodes, what was set aside, rate and events")
    s.add_argument("file")
    s.add_argument("--json", action="store_true", help="print a JSON object")
    s.add_argument("--sfreq", type=float, help="sampling rate, for tables without timestamps")
    s.add_argument("--ch-names", help="comma-separated channel names, for tables without a header")
    s.add_argument("--drop-bad", action="store_true",
                   help="set flat and non-finite channels aside instead of refusing the file")
    s.add_argument("--strict", action="store_true",
                   help="refuse a file with a channel that is no known electrode (by default it is set aside)")
    s.add_argument("--format", choices=sorted(READERS),
                   help="a dataset's own file layout (DEAP pickles, SEED-IV / Cho 2017 / BCI IV-1 .mat)")
    _add_placing(s, model=False)
    s.set_defaults(fn=_cmd_inspect)

    s = sub.add_parser("synth", help="write the synthetic five-task corpus as EDF + events.tsv")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--subjects", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tasks", help="comma-separated subset of ER,MI,MW,SS,CM")
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(fn=_cmd_synth, outputs=["out"])

    s = sub.add_parser("prepare", help="preprocess and window a dataset folder into a store")
    s.add_argument("card", help="dataset card name (see `eegpt cards`) or path to a card .toml")
    s.add_argument("--source", required=True, help="the dataset folder, as downloaded")
    s.add_argument("--out", required=True, help="store folder (a partial one is completed)")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--skip-bad", action="store_true", help="leave out unreadable recordings")
    s.add_argument("--overwrite", action="store_true", help="replace a store of another card or recipe at --out")
    s.add_argument("--continuous", action="store_true",
                   help="whole recordings, labelled or not, as unlabelled windows (data for pretraining)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config(s.add_argument_group("preprocessing recipe (eegpt.preprocess.Preprocess)"), config_class("preprocess"))
    s.set_defaults(fn=_cmd_prepare, outputs=["out"])

    s = sub.add_parser("fetch", help="download a dataset with MNE's fetcher (eegmmidb, sleep-edf)")
    s.add_argument("card")
    s.add_argument("--out", required=True)
    s.add_argument("--subjects", type=int, nargs="+", default=[1],
                   help="subject numbers (eegmmidb 1-109, sleep-edf 0-82)")
    s.set_defaults(fn=_cmd_fetch)

    s = sub.add_parser("presets", help="model sizes and parameter counts (computed from shapes)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_presets)

    s = sub.add_parser("pretrain", help="pretrain the ETE on prepared stores (resumes in WORKDIR)")
    s.add_argument("--data", nargs="+", help="prepared store folders")
    s.add_argument("--recipe", choices=["foundation"],
                   help="foundation: every dataset under --source read whole, no benchmark's held-out subject")
    s.add_argument("--source", help="with --recipe foundation: the folder holding the datasets (../shared/data)")
    s.add_argument("--export", help="with --recipe foundation: write the float16 encoder here "
                                    "(eegpt/weights/foundation ships with the package)")
    s.add_argument("--workdir", required=True)
    s.add_argument("--quiet", action="store_true")
    add_config(s.add_argument_group("training (eegpt.train.PretrainConfig)"), config_class("pretrain"))
    s.set_defaults(fn=_cmd_pretrain, outputs=["workdir"])

    s = sub.add_parser("finetune", help="jointly fine-tune the graph and heads over several stores")
    s.add_argument("--ete", required=True, help="a pretraining workdir (eegpt pretrain), or foundation: the "
                                                 "encoder shipped with the package")
    s.add_argument("--data", nargs="+", required=True, help="prepared stores, one per dataset")
    s.add_argument("--workdir", required=True, help="the run; the model directory is WORKDIR/model")
    s.add_argument("--quiet", action="store_true")
    add_config(s.add_argument_group("fine-tuning (eegpt.finetune.FinetuneConfig)"), config_class("finetune"))
    s.set_defaults(fn=_cmd_finetune, outputs=["workdir"])

    s = sub.add_parser("evaluate", help="score fine-tuned model(s) on a split; several workdirs: mean ± std")
    s.add_argument("--workdir", nargs="+", required=True, help="finetune workdir(s), e.g. one per seed")
    s.add_argument("--data", nargs="+", required=True)
    s.add_argument("--split", default="test")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_evaluate)

    s = sub.add_parser("embed", help="per-electrode and per-window embeddings to an .npz")
    s.add_argument("--ete", required=True, help="a pretraining workdir or a model directory")
    s.add_argument("--data", nargs="+", required=True)
    s.add_argument("--out", required=True, help="output .npz")
    s.add_argument("--split", help="only this split (default: every window)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    s.set_defaults(fn=_cmd_embed)

    s = sub.add_parser("probe", help="linear probes of a pretrained ETE's features beside band power, by subject")
    s.add_argument("--ete", required=True, help="a pretraining workdir (eegpt pretrain), or foundation: the "
                                                 "encoder shipped with the package")
    s.add_argument("--data", nargs="+", required=True, help="prepared stores (one montage each)")
    s.add_argument("--folds", type=int, default=5, help="cross-validation folds, grouped by subject")
    s.add_argument("--json-out", help="write the scores to this .json")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --json-out")
    s.set_defaults(fn=_cmd_probe)

    s = sub.add_parser("tsne", help="t-SNE picture and clustering scores of an embeddings .npz")
    s.add_argument("embeddings")
    s.add_argument("--out", required=True, help="output .png (scores go beside it as .json)")
    s.add_argument("--key", default="auto", help="array to embed: pooled, mean or auto (pooled if present)")
    s.add_argument("--marker", choices=("task", "subject"), default="task")
    s.add_argument("--perplexity", type=float, default=30.0)
    s.add_argument("--max-points", type=int, default=3000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=_cmd_tsne)

    s = sub.add_parser("demo", help="the whole model on the synthetic corpus, with no data: pretrain, "
                       "fine-tune, score beside the baseline, t-SNE")
    s.add_argument("--workdir", required=True)
    s.add_argument("--quick", action="store_true", help="a smaller corpus and fewer steps (a few minutes)")
    s.add_argument("--specialists", action=argparse.BooleanOptionalAction, default=None,
                   help="EEGNet and ShallowFBCSPNet beside the classical peers (default: in the full demo when the "
                        "peers extra is installed)")
    s.add_argument("--seeds", type=int, nargs="+", help="one demo per seed in WORKDIR/seed-S (each its own corpus "
                   "draw, training and peers) and WORKDIR/summary.json: mean ± std over seeds, the targets checked")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=_cmd_demo, outputs=["workdir"])

    s = sub.add_parser("benchmark", help="a real dataset's protocol: the model beside its peers")
    s.add_argument("name", help="eegmat, eegmmidb, eegmmidb-s001, n170 or p300")
    s.add_argument("--source", required=True, help="the dataset folder, as downloaded")
    s.add_argument("--workdir", required=True)
    s.add_argument("--ete", help="foundation (the default, where it saw none of the protocol's held-out subjects): "
                                 "the shipped ETE; per-dataset: pretrain one per fold on its training windows; "
                                 "or a pretraining workdir to reuse")
    s.add_argument("--preset", default="base")
    s.add_argument("--pretrain-steps", type=int, default=1000)
    s.add_argument("--finetune-steps", type=int, default=600)
    s.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed; mean ± std over them")
    s.add_argument("--train-subjects", type=int, default=None,
                   help="keep K of the training subjects, drawn anew per seed (label efficiency; default: all)")
    s.add_argument("--specialists", action=argparse.BooleanOptionalAction, default=None,
                   help="EEGNet and ShallowFBCSPNet beside the classical peers (default: when the peers extra "
                        "is installed)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=_cmd_benchmark, outputs=["workdir"])

    s = sub.add_parser("copilot-train", help="train the copilot's text decoder on the clinical corpus")
    s.add_argument("--workdir", required=True)
    s.add_argument("--finetuned", help="a fine-tuning workdir: its pooled embeddings feed the EEG prefix")
    s.add_argument("--quiet", action="store_true")
    add_config(s.add_argument_group("training (eegpt.copilot.decoder.CopilotTrainConfig)"), config_class("copilot"))
    s.set_defaults(fn=_cmd_copilot_train, outputs=["workdir"])

    s = sub.add_parser("copilot", help="a raw EEG file -> prediction -> clinician answer (and an EMR)")
    s.add_argument("file")
    s.add_argument("--model", help="a model directory or demo workdir (default: runs/demo, then runs/demo-quick)")
    s.add_argument("--copilot", help="the decoder's directory (default: MODEL/copilot)")
    s.add_argument("--task", choices=TASKS,
                   help="which head answers (default: the one whose montages match the file best)")
    s.add_argument("--age", type=int, help="years, 0-120")
    s.add_argument("--sex", help="F, M, female or male")
    s.add_argument("--question")
    s.add_argument("--emr-out", help="PATH.md (Markdown) or PATH.json (FHIR R4 Bundle)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --emr-out")
    s.add_argument("--seconds", type=float, help="answer about the first SECONDS of the recording only")
    _add_placing(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_copilot)

    s = sub.add_parser("chat", help="questions and follow-ups about a recording in the terminal, with cited passages")
    s.add_argument("file")
    s.add_argument("--model", help="a model directory or demo workdir (default: runs/demo, then runs/demo-quick)")
    s.add_argument("--copilot", help="the decoder's directory (default: MODEL/copilot)")
    s.add_argument("--task", choices=TASKS, help="which head answers (default: by the file's montage)")
    s.add_argument("--age", type=int, help="years, 0-120")
    s.add_argument("--sex", help="F, M, female or male")
    s.add_argument("--question", help="the first question (default: the task's state question)")
    s.add_argument("--docs", help="a folder of Markdown guidelines to retrieve and cite beside the knowledge base")
    s.add_argument("--seconds", type=float, help="only the first SECONDS of the recording")
    _add_placing(s)
    s.add_argument("--transcript", help="write the questions, answers and citations to this JSON file")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --transcript")
    s.set_defaults(fn=_cmd_chat)

    s = sub.add_parser("stream", help="live EEG: a prediction for every new second (a file replayed, or lsl:NAME)")
    s.add_argument("source", help="a recording to replay, or lsl:NAME for a Lab Streaming Layer stream")
    s.add_argument("--model", help="a model directory or demo workdir (default: runs/demo, then runs/demo-quick)")
    s.add_argument("--task", choices=TASKS, help="which task's head answers (default: by the montage)")
    s.add_argument("--head", help="a head by dataset name")
    s.add_argument("--speed", type=float, default=1.0, help="replay at this many times real time (0: as fast as possible)")
    s.add_argument("--seconds", type=float, help="stop after this many seconds of signal")
    s.add_argument("--csv-out", help="one row per second: end_s, label, one probability column per class")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --csv-out")
    s.set_defaults(fn=_cmd_stream)

    s = sub.add_parser("quantize", help="an int8 copy of a model directory (weights per channel; a quarter the size)")
    s.add_argument("--model", help="a model directory or demo workdir (default: runs/demo, then runs/demo-quick)")
    s.add_argument("--out", required=True, help="the new model directory")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    s.set_defaults(fn=_cmd_quantize)

    s = sub.add_parser("serve", help="the copilot as a local web page: traces, probabilities, answer, chat, EMR")
    s.add_argument("--model", help="a model directory or demo workdir (default: runs/demo, then runs/demo-quick)")
    s.add_argument("--copilot", help="the decoder's directory (default: MODEL/copilot)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=7860)
    s.add_argument("--docs", help="a folder of Markdown guidelines the chat retrieves and cites")
    s.add_argument("--recordings", help="a folder of recordings to pick from (besides uploading)")
    s.set_defaults(fn=_cmd_serve)

    s = sub.add_parser("predict", help="a trained model's per-window probabilities and summary for a recording")
    s.add_argument("file")
    s.add_argument("--model", help="a model directory or demo workdir (default: runs/demo, then runs/demo-quick)")
    s.add_argument("--task", choices=TASKS, help="which task's head answers")
    s.add_argument("--head", help="a head by dataset name (see the model's config.json)")
    s.add_argument("--seconds", type=float, help="only the first SECONDS of the recording")
    _add_placing(s)
    s.add_argument("--json", action="store_true", help="print everything as JSON")
    s.add_argument("--json-out", help="write the JSON to this file")
    s.add_argument("--csv", help="write one row per window (start, label, probabilities) to this .csv")
    s.add_argument("--plot", help="write class probabilities over time (a hypnogram for sleep) to this .png")
    s.add_argument("--overwrite", action="store_true", help="replace existing output files")
    s.set_defaults(fn=_cmd_predict)

    s = sub.add_parser("cards", help="list the dataset cards")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_cards)
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
