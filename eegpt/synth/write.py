"""Writing the synthetic corpus as real files: one EDF+ (through MNE's exporter) and a BIDS-style
``_events.tsv`` per subject and task, ``participants.tsv`` and ``corpus.json``. Same seed, same
bytes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from eegpt.errors import atomic_write
from eegpt.synth.simulate import MEAS_DATE, TASK_SPECS, Subject, make_subject, simulate


def write_recording(path: Path, names, x_uv, sfreq, events, extra_types=()) -> None:
    """Write an EDF through MNE (edfio), atomically, with the events as EDF+ annotations."""
    import mne

    types = ["eeg"] * (len(names) - len(extra_types)) + list(extra_types)
    info = mne.create_info(names, sfreq, types, verbose="error")
    raw = mne.io.RawArray(x_uv * 1e-6, info, verbose="error")
    raw.set_meas_date(MEAS_DATE)
    if events:
        raw.set_annotations(mne.Annotations([e[0] for e in events], [e[1] for e in events],
                                            [e[2] for e in events], orig_time=MEAS_DATE))

    atomic_write(path, lambda tmp: mne.export.export_raw(str(tmp), raw, fmt="edf", overwrite=True,
                                                         verbose="error"))


def write_subject(out: Path, task: str, subj: Subject, seed: int) -> Path:
    """Write one subject's session of one task: EDF + BIDS-style events.tsv. Returns the EDF."""
    names, x, sfreq, trials = simulate(task, subj, seed)
    classes = TASK_SPECS[task].classes
    events = [(round(a, 4), round(d, 4), classes[k]) for a, d, k in trials]
    folder = out / task
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{subj.id}_task-{task}"
    extra_types = {"ECG ECG": "ecg", "EEG A2-A1": "misc", "EOG horizontal": "eog",
                   "EMG submental": "emg"}
    write_recording(folder / f"{stem}_eeg.edf", names, x, sfreq, events,
                    [extra_types[e] for e in TASK_SPECS[task].extra])

    def write_tsv(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["onset", "duration", "trial_type"])
            w.writerows((f"{a:.4f}", f"{d:.4f}", c) for a, d, c in events)

    atomic_write(folder / f"{stem}_events.tsv", write_tsv)
    return folder / f"{stem}_eeg.edf"


def write_corpus(out, subjects: int = 10, seed: int = 0, tasks=tuple(TASK_SPECS), progress=None,
                 workers: int = 1) -> list[Path]:
    """Write the corpus: ``out/<TASK>/sub-NNN_task-<TASK>_eeg.edf`` (+ ``_events.tsv``), and
    ``out/participants.tsv`` and ``out/corpus.json``. Same seed, same bytes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    people = [make_subject(seed, i) for i in range(1, subjects + 1)]
    jobs = [(out, task, subj, seed) for task in tasks for subj in people]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(write_subject, *j) for j in jobs]
            paths = []
            for f in futures:
                paths.append(f.result())
                if progress:
                    progress()
    else:
        paths = []
        for j in jobs:
            paths.append(write_subject(*j))
            if progress:
                progress()

    def write_participants(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["participant_id", "age", "sex", "alpha_peak_hz", "responsiveness", "line_freq"])
            w.writerows((p.id, p.age, p.sex, f"{p.alpha_peak:.2f}", f"{p.responsiveness:.2f}",
                         f"{p.line_freq:g}") for p in people)

    atomic_write(out / "participants.tsv", write_participants)
    meta = {"seed": seed, "subjects": subjects,
            "tasks": {t: {"classes": list(TASK_SPECS[t].classes), "sfreq": TASK_SPECS[t].sfreq,
                          "channels": list(TASK_SPECS[t].channels), "extra": list(TASK_SPECS[t].extra)}
                      for t in tasks}}
    atomic_write(out / "corpus.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    return paths
