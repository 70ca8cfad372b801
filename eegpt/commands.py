"""What each ``eegpt`` command does with its parsed options (``eegpt.arguments``): ``run_NAME(args)``
for the command NAME (``copilot-train``: ``run_copilot_train``). ``eegpt.cli`` builds the parser and
turns bad input into one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eegpt import TASKS
from eegpt.errors import EEGInputError, atomic_write
from eegpt.options import check_output, config_from


def run_inspect(args) -> None:
    """``eegpt inspect FILE``: print a recording's electrodes, set-aside channels, rate and events."""
    from eegpt.recording import read

    rec = read(args.file, sfreq=args.sfreq, drop_bad=args.drop_bad, strict=args.strict, distributed=args.format,
               montage=args.montage, place=args.place,
               ch_names=args.ch_names.split(",") if args.ch_names else None)
    if args.json:
        print(json.dumps(rec.summary(), indent=2))
        return
    print(rec.describe())


def run_synth(args) -> None:
    """``eegpt synth``: write the synthetic five-task corpus."""
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


def run_prepare(args) -> None:
    """``eegpt prepare CARD``: preprocess and window a dataset folder into a store, and print its counts."""
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


def run_fetch(args) -> None:
    """``eegpt fetch CARD``: download a dataset with MNE's fetcher (on a user's machine)."""
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


def run_presets(args) -> None:
    """``eegpt presets``: every preset's parameter counts, from shapes alone."""
    from eegpt.presets import PRESETS, counts, print_presets

    table = {name: counts(name) for name in PRESETS}
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print_presets(table)


def run_pretrain(args) -> None:
    """``eegpt pretrain``: pretrain the ETE on stores, or by the foundation recipe; print its held-out MSE."""
    from eegpt import sharding
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
        m = pretrain_foundation(args.source, args.workdir, cfg, progress=not args.quiet)
        if not sharding.is_primary():  # process 0 writes and reports
            return
        print(f"model card: {Path(args.workdir) / 'MODEL_CARD.md'}")
        if args.export:
            exported = export(args.workdir, load_ete(args.workdir)[1], args.export)
            print(f"exported the encoder to {exported} (float16)")
    elif not args.data:
        raise EEGInputError("give --data STORE [STORE ...], or --recipe foundation --source DATA")
    else:
        m = pretrain(cfg, args.data, args.workdir, progress=not args.quiet)
        if not sharding.is_primary():
            return
    if "val_ce" in m:  # --tokens vq:DIR: the next token's code
        print(f"step {m['step']} (resumed from {m['resumed_from']}): held-out next-code cross-entropy "
              f"{m['val_ce']:.3f} nats (training codes' frequencies {m['unigram_ce']:.3f}), accuracy "
              f"{m['val_accuracy']:.3f} (repeating the previous code {m['repeat_accuracy']:.3f})")
        print(f"wrote {Path(args.workdir) / 'metrics.json'}")
        return
    gain = lambda ref: f"{(1 - m['val_mse'] / m[ref]):+.1%}"  # noqa: E731
    print(f"step {m['step']} (resumed from {m['resumed_from']}): held-out MSE {m['val_mse']:.5f}; "
          f"zero {m['zero_mse']:.5f} ({gain('zero_mse')} better), persistence {m['persistence_mse']:.5f} "
          f"({gain('persistence_mse')})" + (f", linear AR {m['linear_ar_mse']:.5f} ({gain('linear_ar_mse')})"
                                            if "linear_ar_mse" in m else ""))
    print(f"wrote {Path(args.workdir) / 'metrics.json'}")


def run_tokenizer(args) -> None:
    """``eegpt tokenizer``: train the VQ neural tokenizer; print its held-out reconstruction and code use."""
    from eegpt import sharding
    from eegpt.neural_tokenizer import TokenizerTrainConfig, train_tokenizer
    from eegpt.presets import PRESETS

    if args.preset not in PRESETS:
        raise EEGInputError(f"--preset: unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
    cfg = config_from(TokenizerTrainConfig, args)
    if args.recipe == "foundation":
        from eegpt.foundation import recipe_stores

        if not args.source or args.data:
            raise EEGInputError("--recipe foundation reads --source DATA (the folder holding the datasets), not --data")
        data = recipe_stores(args.source, args.workdir, progress=not args.quiet)
    elif args.source or not args.data:
        raise EEGInputError("give --data STORE [STORE ...], or --recipe foundation --source DATA")
    else:
        data = args.data
    m = train_tokenizer(cfg, data, args.workdir, align_with=args.align_with, progress=not args.quiet)
    if not sharding.is_primary():
        return
    print(f"step {m['step']} (resumed from {m['resumed_from']}): held-out time MSE {m['time_mse']:.5f} "
          f"(zero {m['time_zero_mse']:.5f}), amplitude MSE {m['amplitude_mse']:.5f} (training mean spectrum "
          f"{m['amplitude_mean_mse']:.5f}); codebook perplexity {m['perplexity']:.1f}, {m['live_codes']} of "
          f"{m['codes']} codes live")
    print(f"wrote {Path(args.workdir) / 'metrics.json'}")


def run_finetune(args) -> None:
    """``eegpt finetune``: fine-tune the graph and heads; print what was kept."""
    from eegpt.evaluate import kept_model
    from eegpt.finetune import FinetuneConfig, finetune

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


def run_evaluate(args) -> None:
    """``eegpt evaluate``: score fine-tuned models on a split, with what each kept."""
    from eegpt.evaluate import evaluate
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


def run_embed(args) -> None:
    """``eegpt embed``: write per-electrode and per-window embeddings."""
    from eegpt.embed import embed

    check_output(args.out, args.overwrite)
    info = embed(args.ete, args.data, args.out, split=args.split)
    print(f"wrote {info['windows']} windows' embeddings ({', '.join(info['arrays'])}) to {args.out}")


def run_probe(args) -> None:
    """``eegpt probe``: linear probes of an ETE's features beside band power, by subject."""
    from eegpt.embed import print_probes, probe

    check_output(args.json_out, args.overwrite)
    r = probe(args.ete, args.data, folds=args.folds)
    if args.json_out:
        atomic_write(args.json_out, lambda p: p.write_text(json.dumps(r, indent=2) + "\n"))
    print_probes(r)
    print(f"(balanced accuracy of linear probes, {args.folds}-fold cross-validation grouped by subject"
          + (f"; wrote {args.json_out})" if args.json_out else ")"))


def run_tsne(args) -> None:
    """``eegpt tsne``: a t-SNE picture and clustering scores of an embeddings file."""
    from eegpt.embed import tsne

    out = tsne(args.embeddings, args.out, key=args.key, marker=args.marker, perplexity=args.perplexity,
               max_points=args.max_points, seed=args.seed)
    print(f"wrote {args.out} ({out['points']} points of {out['key']})")
    for task, c in out["clustering"].items():
        print(f"  {task:<4} k-means ARI {c['kmeans_ari']:.3f}, spectral ARI {c['spectral_ari']:.3f}, "
              f"silhouette {c['silhouette']:.3f}")
    print(f"wrote {out['json']}")


def run_demo(args) -> None:
    """``eegpt demo``: the whole model on the synthetic corpus (one seed, or several with a summary)."""
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


def run_benchmark(args) -> None:
    """``eegpt benchmark NAME``: a real dataset's protocol, the model beside its peers."""
    from eegpt.benchmark import benchmark, print_results

    r = benchmark(args.name, args.source, args.workdir, ete=args.ete, preset=args.preset,
                  pretrain_steps=args.pretrain_steps, finetune_steps=args.finetune_steps, seeds=args.seeds,
                  specialists=args.specialists, train_subjects=args.train_subjects,
                  align_subjects=args.align_subjects, progress=not args.quiet)

    print_results(r)
    print(f"wrote {Path(args.workdir) / 'results.json'}")


def run_copilot_train(args) -> None:
    """``eegpt copilot-train``: train the copilot's text decoder."""
    from eegpt.copilot.corpus import eeg_bank
    from eegpt.copilot.decoder import CopilotTrainConfig, train

    cfg = config_from(CopilotTrainConfig, args)
    if args.instruct:
        return _copilot_instruct(args, cfg)
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


def _copilot_instruct(args, cfg) -> None:
    """``eegpt copilot-train --instruct``: the EEG-only decoder of a fine-tuned model."""
    from eegpt.copilot import instruct

    if not args.finetuned:
        raise EEGInputError("--instruct needs --finetuned DIR: the model whose windows teach the decoder")
    tuning = config_from(instruct.InstructConfig, args)  # a bad value is refused before any work
    model, stores = instruct.model_stores(args.finetuned)
    r = instruct.train_instruct(model, stores, args.workdir, cfg, tuning, model_path=args.finetuned,
                                progress=not args.quiet)
    scores = ", ".join(f"{k} {v['val_balanced_accuracy']:.3f}" for k, v in r["heads"].items())
    print(f"EEG-only copilot: {r['parameters']:,} parameters, kept {instruct.how_read(r)}; validation balanced "
          f"accuracy {scores}; {r['seconds']:.0f} s -> {args.workdir}")


def run_copilot(args) -> None:
    """``eegpt copilot FILE``: the copilot's answer about a recording, and its EMR."""
    from eegpt.copilot import Copilot, emr
    from eegpt.copilot.copilot import check_age, normalise_sex

    check_age(args.age)  # arguments first: nothing runs on a bad one
    normalise_sex(args.sex)
    if args.emr_out and Path(args.emr_out).suffix.lower() not in (".md", ".markdown", ".json"):
        raise EEGInputError(f"{args.emr_out}: --emr-out must end in .md (Markdown) or .json (FHIR Bundle)")
    check_output(args.emr_out, args.overwrite, "an EMR")
    r = Copilot(_model_or_default(args.model), args.copilot, eeg_only=args.eeg_only).ask(args.file, task=args.task, age=args.age, sex=args.sex,
                                              question=args.question, seconds=args.seconds,
                                              montage=args.montage, place=args.place)
    if args.emr_out:
        emr.write(r["record"], args.emr_out)
    if args.json:
        print(json.dumps({k: r[k] for k in ("task", "head", "label", "probs", "windows", "question", "answer",
                                             "fallback", "decoder_answer", "trained_on", "synthetic", "eeg_only",
                                             "out_of_distribution", "unfamiliar", "uncertain", "answer_above")}, indent=2))
        return
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["probs"].items(), key=lambda kv: -kv[1])[:3])
    via = f"the EEG-only decoder for {r['head']}" if r["eeg_only"] else r["head"]
    print(f"{Path(args.file).name}: {r['task']} via {via} over {r['windows']} windows ({top})"
          + (f"; {100 * r['unfamiliar']:.0f}% of the windows unlike the training data" if r["out_of_distribution"] else "")
          + (f"; below the {100 * r['answer_above']:.0f}% it answers at" if r["uncertain"] else ""))
    print(f"Q: {r['question']}\nA: {r['answer']}")
    if r["fallback"]:
        print("(the decoder's answer failed the faithfulness check; this is the templated answer)")
    if not r["synthetic"] and not r["eeg_only"]:  # the EEG-only answer says it already
        print(r["trained_on"])
    if args.emr_out:
        print(f"EMR -> {args.emr_out}")


def run_chat(args) -> None:
    """``eegpt chat FILE``: questions and follow-ups about a recording in the terminal."""
    from eegpt.copilot import Copilot
    from eegpt.copilot.dialogue import Conversation, Library

    check_output(args.transcript, args.overwrite, "a transcript")
    library = Library(args.docs)  # a bad --docs folder is refused before the model loads
    talk = Conversation(Copilot(_model_or_default(args.model), args.copilot, eeg_only=args.eeg_only), args.file,
                        task=args.task,
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


def run_stream(args) -> None:
    """``eegpt stream SOURCE``: a prediction for every new second of a replayed file or an LSL stream."""
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


def run_quantize(args) -> None:
    """``eegpt quantize``: an int8 copy of a model directory."""
    from eegpt.quantize import disk_bytes, quantize_model

    out = quantize_model(_model_or_default(args.model), args.out, args.overwrite)
    print(f"int8 model ({disk_bytes(out) / 1e6:.2f} MB) -> {out}")


def run_serve(args) -> None:
    """``eegpt serve``: the copilot as a local web page."""
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


def run_predict(args) -> None:
    """``eegpt predict FILE``: a model's per-window probabilities and summary for a recording."""
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


def run_cards(args) -> None:
    """``eegpt cards``: list the dataset cards."""
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
