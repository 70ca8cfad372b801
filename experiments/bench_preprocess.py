"""Preprocessing: ours beside the plain MNE pipeline, on every EEGMAT recording.

The plain pipeline is ``read_raw_edf -> filter(0.1, 75) -> notch_filter(50) -> resample(256)``
on the 19 EEG channels; ours is ``eegpt.read -> eegpt.preprocess.preprocess`` with the same
recipe (scale 1). Prints throughput in channel-hours per second of wall time (processing alone,
and end to end with reading), the speed-up, and the relative RMS difference of the outputs:

- against MNE's default FFT resampler, which pads to a power of two and rounds the output
  length, so its output grid drifts by up to ~0.7 ms over a 3-min file;
- against MNE resampling on an exact grid (``method="polyphase"``), the like-for-like check:
  the target is < 1 %.

Run (about a minute on 2 cores):

    python experiments/bench_preprocess.py [--data ../shared/data/MW/eegmat] [--json]

With ``--memory-hours H`` it also measures peak memory (tracemalloc) while preprocessing an
H-hour, 64-channel, 500-Hz recording, against the sizes of its input and output: processing in
blocks keeps the extra memory at a few blocks, whatever the length.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import mne
import numpy as np

from eegpt.preprocess import Preprocess, band_edges, preprocess
from eegpt.recording import read


def _rel_rms(a, b) -> float:
    return float(np.sqrt(((a - b) ** 2).mean()) / np.sqrt((b ** 2).mean()))


def run(files, cfg: Preprocess) -> dict:
    t_ours = t_ours_proc = t_mne = t_mne_proc = 0.0
    ch_hours = 0.0
    diff_default, diff_exact = [], []
    preprocess(read(files[0]), cfg)  # warm-up: filter design cache, imports
    for path in files:
        t0 = time.perf_counter()
        rec = read(path)
        t1 = time.perf_counter()
        ours = preprocess(rec, cfg).signals
        t2 = time.perf_counter()
        t_ours += t2 - t0
        t_ours_proc += t2 - t1
        ch_hours += len(rec.electrodes) * rec.duration / 3600
        l_freq, h_freq, notches = band_edges(cfg, rec.sfreq)
        outs = {}
        for method in ("fft", "polyphase"):
            t0 = time.perf_counter()
            raw = mne.io.read_raw_edf(path, preload=True, verbose="error").pick(rec.raw_names)
            t1 = time.perf_counter()
            raw.filter(l_freq, h_freq, verbose="error")
            raw.notch_filter(notches, verbose="error")
            raw.resample(cfg.sfreq, method=method, verbose="error")
            t2 = time.perf_counter()
            outs[method] = raw.get_data() * 1e6
            if method == "fft":  # the plain pipeline's defaults: this is the one we time against
                t_mne += t2 - t0
                t_mne_proc += t2 - t1
        diff_default.append(_rel_rms(ours, outs["fft"]))
        diff_exact.append(_rel_rms(ours, outs["polyphase"]))
    return {
        "files": len(files), "channel_hours": round(ch_hours, 4),
        "ours_channel_hours_per_s": ch_hours / t_ours_proc,
        "mne_channel_hours_per_s": ch_hours / t_mne_proc,
        "speedup_processing": t_mne_proc / t_ours_proc,
        "ours_end_to_end_channel_hours_per_s": ch_hours / t_ours,
        "mne_end_to_end_channel_hours_per_s": ch_hours / t_mne,
        "speedup_end_to_end": t_mne / t_ours,
        "rel_rms_vs_mne_default_median": float(np.median(diff_default)),
        "rel_rms_vs_mne_exact_grid_max": float(np.max(diff_exact)),
        "rel_rms_vs_mne_exact_grid_median": float(np.median(diff_exact)),
    }


def memory(hours: float, cfg: Preprocess) -> dict:
    import tracemalloc

    from eegpt.preprocess import filter_resample

    x = np.random.default_rng(0).standard_normal((64, int(hours * 3600 * 500)), dtype=np.float32)
    filter_resample(x[:, :500 * 60], 500.0, cfg)  # warm-up: filter design
    tracemalloc.start()
    y = filter_resample(x, 500.0, cfg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"hours": hours, "input_mb": x.nbytes / 2**20, "output_mb": y.nbytes / 2**20,
            "peak_mb_during_processing": peak / 2**20, "extra_mb_beyond_output": (peak - y.nbytes) / 2**20}


def main(argv=None) -> int:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "MW" / "eegmat"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default)
    p.add_argument("--limit", type=int, default=0, help="only the first N files")
    p.add_argument("--json", action="store_true")
    p.add_argument("--memory-hours", type=float, default=0.0, help="also measure memory on a long recording")
    args = p.parse_args(argv)
    files = sorted(args.data.glob("*.edf"))[: args.limit or None]
    if not files:
        print(f"bench_preprocess: {args.data}: no EDF files; pass --data", file=sys.stderr)
        return 2
    r = run(files, Preprocess(scale=1.0))
    if args.memory_hours:
        r["memory"] = memory(args.memory_hours, Preprocess(scale=1.0))
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['files']} EEGMAT files, {r['channel_hours']:.2f} channel-hours")
    print(f"processing   ours {r['ours_channel_hours_per_s']:8.1f} ch-h/s   MNE {r['mne_channel_hours_per_s']:6.1f} ch-h/s"
          f"   speed-up {r['speedup_processing']:.1f}x")
    print(f"with reading ours {r['ours_end_to_end_channel_hours_per_s']:8.1f} ch-h/s   MNE "
          f"{r['mne_end_to_end_channel_hours_per_s']:6.1f} ch-h/s   speed-up {r['speedup_end_to_end']:.1f}x")
    print(f"relative RMS difference vs MNE, exact-grid resample: median {r['rel_rms_vs_mne_exact_grid_median']:.4%}"
          f", max {r['rel_rms_vs_mne_exact_grid_max']:.4%}")
    print(f"relative RMS difference vs MNE, default FFT resample (drifting grid): median "
          f"{r['rel_rms_vs_mne_default_median']:.2%}")
    if "memory" in r:
        m = r["memory"]
        print(f"memory, {m['hours']:g} h x 64 ch at 500 Hz: input {m['input_mb']:.0f} MB, output "
              f"{m['output_mb']:.0f} MB, peak while processing {m['peak_mb_during_processing']:.0f} MB "
              f"({m['extra_mb_beyond_output']:.0f} MB beyond the output)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
