"""The ``eegpt`` command line.

Bad input ends in one line on stderr (``eegpt: <file>: <problem>; <what to do>``) and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from eegpt.recording import EEGInputError


def _cmd_inspect(args) -> None:
    from eegpt.recording import read

    rec = read(args.file, sfreq=args.sfreq, drop_bad=args.drop_bad,
               ch_names=args.ch_names.split(",") if args.ch_names else None)
    info = rec.summary()
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(f"file        {info['source']}  ({info['meta'].get('format', '?')})")
    print(f"rate        {info['sfreq']:g} Hz, {info['n_samples']} samples, {info['duration_s']:.2f} s")
    print(f"electrodes  {len(rec.electrodes)}")
    for raw, name in zip(rec.raw_names, rec.electrodes):
        print(f"  {raw!r:>16} -> {name}")
    if rec.set_aside:
        print(f"set aside   {len(rec.set_aside)}")
        for raw, why in rec.set_aside.items():
            print(f"  {raw!r:>16}    {why}")
    counts: dict[str, int] = {}
    for e in info["events"]:
        counts[e["description"]] = counts.get(e["description"], 0) + 1
    print(f"events      {len(info['events'])}" + (": " + ", ".join(f"{k} x{v}" for k, v in counts.items()) if counts else ""))


def _cmd_synth(args) -> None:
    from tqdm import tqdm

    from eegpt.synth import TASKS, write_corpus

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

    cfg = Preprocess(l_freq=args.l_freq, h_freq=args.h_freq,
                     line_freq=None if args.line_freq == 0 else args.line_freq,
                     sfreq=args.sfreq, average_reference=args.average_reference, scale=args.scale)
    store = prepare(args.card, args.source, args.out, cfg, workers=args.workers,
                    skip_bad=args.skip_bad, progress=not args.quiet)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eegpt", description="EEGPT: read, simulate and prepare EEG for "
                                "an autoregressive EEG generalist.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("inspect", help="show a recording's electrodes, what was set aside, rate and events")
    s.add_argument("file")
    s.add_argument("--json", action="store_true", help="print a JSON object")
    s.add_argument("--sfreq", type=float, help="sampling rate, for tables without timestamps")
    s.add_argument("--ch-names", help="comma-separated channel names, for tables without a header")
    s.add_argument("--drop-bad", action="store_true",
                   help="set unknown, flat and non-finite channels aside instead of refusing the file")
    s.set_defaults(fn=_cmd_inspect)

    s = sub.add_parser("synth", help="write the synthetic five-task corpus as EDF + events.tsv")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--subjects", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tasks", help="comma-separated subset of ER,MI,MW,SS,CM")
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(fn=_cmd_synth)

    s = sub.add_parser("prepare", help="preprocess and window a dataset folder into a store")
    s.add_argument("card", help="dataset card name (see `eegpt cards`) or path to a card .toml")
    s.add_argument("--source", required=True, help="the dataset folder, as downloaded")
    s.add_argument("--out", required=True, help="store folder (a partial one is completed)")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--skip-bad", action="store_true", help="leave out unreadable recordings")
    s.add_argument("--l-freq", type=float, default=0.1)
    s.add_argument("--h-freq", type=float, default=75.0)
    s.add_argument("--line-freq", type=float, default=50.0, help="mains frequency to notch (0: none)")
    s.add_argument("--sfreq", type=float, default=256.0)
    s.add_argument("--average-reference", action="store_true")
    s.add_argument("--scale", type=float, default=0.01, help="factor applied to µV (NeuroLM: 0.01)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=_cmd_prepare)

    s = sub.add_parser("fetch", help="download a dataset with MNE's fetcher (eegmmidb, sleep-edf)")
    s.add_argument("card")
    s.add_argument("--out", required=True)
    s.add_argument("--subjects", type=int, nargs="+", default=[1],
                   help="subject numbers (eegmmidb 1-109, sleep-edf 0-82)")
    s.set_defaults(fn=_cmd_fetch)

    s = sub.add_parser("cards", help="list the dataset cards")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_cards)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except EEGInputError as err:
        print(f"eegpt: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eegpt: interrupted; completed outputs are kept, rerun to finish", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
