"""Preprocessing: band-pass, notch, resample, optional average reference, scaling.

The recipe is NeuroLM's (0.1-75 Hz band-pass, 50/60 Hz notch, resample, µV/100) as configuration.
It computes what the plain MNE pipeline ``raw.filter -> raw.notch_filter -> raw.resample`` computes,
with MNE's own filter designs (``mne.filter.create_filter``), but in one pass: the band-pass and
notch kernels are merged into one zero-phase FIR whose frequency response is applied in the same
FFT that resamples. Long recordings are processed in overlapping blocks (overlap-save), so memory
stays at the input, the output and one block whatever the length.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.fft

from eegpt.recording import Recording
from eegpt.errors import EEGInputError


@dataclass(frozen=True)
class Preprocess:
    """The preprocessing recipe.

    Attributes
    ----------
    l_freq, h_freq : band-pass edges in Hz (None disables that edge). ``h_freq`` is capped at 90 %
        of the lower of the input and output Nyquist frequencies, so it is always valid.
    line_freq : mains frequency to notch (50 or 60 Hz, None to skip); its harmonics below the
        band-pass's upper edge are notched too, with MNE's default widths.
    sfreq : output sampling rate in Hz (None keeps the recording's).
    average_reference : re-reference to the mean of the electrodes.
    scale : factor applied last (NeuroLM's µV/100 is 0.01).
    min_sfreq : recordings sampled below this rate are refused as too coarse for the recipe.
    block_s : target length of one processing block in seconds (memory bound for long recordings).
    """

    l_freq: float | None = 0.1
    h_freq: float | None = 75.0
    line_freq: float | None = 50.0
    sfreq: float | None = 256.0
    average_reference: bool = False
    scale: float = 0.01
    min_sfreq: float = 64.0
    block_s: float = 300.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def band_edges(cfg: Preprocess, sfreq_in: float) -> tuple[float | None, float | None, list[float]]:
    """The effective (l_freq, h_freq, notch frequencies) for a recording at ``sfreq_in``."""
    sfreq_out = cfg.sfreq or sfreq_in
    nyq = min(sfreq_in, sfreq_out) / 2
    h = cfg.h_freq
    if h is not None and h > 0.9 * nyq:
        h = round(0.9 * nyq, 6)
    upper = h if h is not None else nyq
    notches = []
    if cfg.line_freq:
        k = 1
        # a notch needs its band (and transition) inside the pass-band to matter and be designable
        while k * cfg.line_freq + k * cfg.line_freq / 400 + 0.5 < min(upper, sfreq_in / 2):
            notches.append(k * cfg.line_freq)
            k += 1
    return cfg.l_freq, h, notches


@functools.lru_cache(maxsize=32)
def fir_kernel(cfg: Preprocess, sfreq_in: float) -> np.ndarray:
    """One zero-phase FIR: MNE's band-pass design convolved with MNE's notch design."""
    import mne

    l_freq, h_freq, notches = band_edges(cfg, sfreq_in)
    kernel = np.ones(1)
    if l_freq is not None or h_freq is not None:
        kernel = mne.filter.create_filter(None, sfreq_in, l_freq, h_freq, verbose="error")
    if notches:
        freqs = np.asarray(notches, float)
        widths = freqs / 200.0  # MNE's notch_filter defaults: width f/200, 1 Hz transition
        tb_2 = 0.5
        lows = freqs - widths / 2 - tb_2
        highs = freqs + widths / 2 + tb_2
        notch = mne.filter.create_filter(None, sfreq_in, highs, lows, l_trans_bandwidth=tb_2,
                                         h_trans_bandwidth=tb_2, verbose="error")
        kernel = np.convolve(kernel, notch)
    return kernel


@functools.lru_cache(maxsize=32)
def _response(cfg: Preprocess, sfreq_in: float, n_seg: int, n_res: int) -> np.ndarray:
    """The kernel's frequency response for segments of ``n_seg`` samples resampled to ``n_res``
    (the bins both keep), designed once per stream or recording length."""
    kernel = fir_kernel(cfg, sfreq_in)
    half = (len(kernel) - 1) // 2
    centred = np.zeros(n_seg)
    centred[: half + 1] = kernel[half:]  # the zero-phase kernel centred on sample 0
    centred[n_seg - half:] = kernel[:half]
    keep = min(n_seg, n_res) // 2 + 1
    response = (scipy.fft.rfft(centred)[:keep] * (n_res / n_seg)).astype(np.complex64)
    response.flags.writeable = False  # shared by every call with these sizes
    return response


def _segment(x: np.ndarray, start: int, length: int) -> np.ndarray:
    """``x[:, start:start+length]`` as float32, extended past the ends as MNE's 'reflect_limited'
    padding does: point reflection about the end sample (2*x[0] - x[k]), zeros past one length."""
    n_ch, n = x.shape
    if start >= 0 and start + length <= n:
        return x[:, start:start + length].astype(np.float32)
    seg = np.zeros((n_ch, length), np.float32)
    lo, hi = max(start, 0), min(start + length, n)
    if hi > lo:
        seg[:, lo - start:hi - start] = x[:, lo:hi]
    a, a_end = max(start, 1 - n), min(start + length, 0)  # before: sample -k is 2*x[0] - x[k], k < n
    if a < a_end:
        seg[:, a - start:a_end - start] = 2 * x[:, :1] - x[:, 1 - a_end:1 - a][:, ::-1]
    b, b_end = max(start, n), min(start + length, 2 * n - 1)  # after: n-1+k is 2*x[n-1] - x[n-1-k]
    if b < b_end:
        seg[:, b - start:b_end - start] = 2 * x[:, n - 1:n] - x[:, 2 * n - 1 - b_end:2 * n - 1 - b][:, ::-1]
    return seg


def filter_resample(x: np.ndarray, sfreq_in: float, cfg: Preprocess, last: int | None = None) -> np.ndarray:
    """Band-pass, notch and resample ``x`` [C, T] (any float) -> float32 [C, T'] at ``cfg.sfreq``.

    Single-precision FFTs: their rounding (~1e-6 relative) is far below the 1 % agreement we test.
    ``last``: only the last ``last`` output samples (a stream's newest window), computed from the
    input they depend on — the same values, in a fraction of the time for a long input.
    """
    sfreq_out = cfg.sfreq or sfreq_in
    ratio = Fraction(sfreq_out / sfreq_in).limit_denominator(10_000)
    up, down = ratio.numerator, ratio.denominator
    if abs(up / down - sfreq_out / sfreq_in) > 1e-9:
        raise ValueError(f"cannot resample {sfreq_in} Hz to {sfreq_out} Hz exactly")
    kernel = fir_kernel(cfg, sfreq_in)
    half = (len(kernel) - 1) // 2
    n_ch, n_in = x.shape
    n_out_total = int(round(n_in * up / down))
    first_in = 0
    if last is not None and last < n_out_total:
        first_in = max(0, (n_in - math.ceil(last * down / up)) // down * down)
        while first_in > 0 and first_in * up // down > n_out_total - last:
            first_in -= down
    first_out = first_in * up // down
    # Blocks and margins are multiples of `down`, so each maps to a whole number of output samples
    # (an exact output grid). The margin covers the kernel plus 0.5 s for the tails of the
    # band-limited interpolation; the block length is a fast FFT size.
    margin = math.ceil((half + int(0.5 * sfreq_in)) / down) * down
    want = min(max(cfg.block_s * sfreq_in, 4 * margin), n_in - first_in + down)
    n_seg = down * scipy.fft.next_fast_len(math.ceil((want + 2 * margin) / down), real=True)
    core = n_seg - 2 * margin
    n_res = n_seg * up // down
    response = _response(cfg, sfreq_in, n_seg, n_res)
    keep = len(response)
    m_out = margin * up // down
    out = np.empty((n_ch, n_out_total - first_out), np.float32)
    pos_in, pos_out = first_in, first_out
    while pos_out < n_out_total:
        spec = scipy.fft.rfft(_segment(x, pos_in - margin, n_seg), axis=1, workers=-1)
        res_spec = np.zeros((n_ch, n_res // 2 + 1), np.complex64)
        np.multiply(spec[:, :keep], response, out=res_spec[:, :keep])
        y = scipy.fft.irfft(res_spec, n_res, axis=1, workers=-1)
        take = min(core * up // down, n_out_total - pos_out)
        out[:, pos_out - first_out:pos_out - first_out + take] = y[:, m_out:m_out + take]
        pos_in += core
        pos_out += take
    return out if last is None else out[:, -last:]


def preprocess(rec: Recording, cfg: Preprocess = Preprocess(), last: int | None = None) -> Recording:
    """Apply the recipe to a recording; events keep their times in seconds. ``last``: only the last
    ``last`` output samples (see ``filter_resample``; events are then dropped).

    Raises
    ------
    EEGInputError
        When the recording is sampled below ``cfg.min_sfreq`` or is shorter than one second.
    """
    if rec.sfreq < cfg.min_sfreq:
        raise EEGInputError(
            f"{rec.source}: sampling rate {rec.sfreq:g} Hz is below the recipe's minimum of "
            f"{cfg.min_sfreq:g} Hz (band {cfg.l_freq}-{cfg.h_freq} Hz, output {cfg.sfreq} Hz); "
            "use a recording sampled faster or lower Preprocess.min_sfreq")
    if rec.duration < 1.0:
        raise EEGInputError(f"{rec.source}: only {rec.duration:.3f} s of signal; at least 1 s is needed")
    signals = filter_resample(rec.signals, rec.sfreq, cfg, last)
    if last is not None:
        rec = dataclasses.replace(rec, events=type(rec.events)([], [], []))
    if cfg.average_reference:
        signals -= signals.mean(axis=0, keepdims=True)
    signals *= np.float32(cfg.scale)
    unit = rec.unit if cfg.scale == 1 else f"{rec.unit}*{cfg.scale:g}"
    return dataclasses.replace(rec, signals=signals, sfreq=float(cfg.sfreq or rec.sfreq), unit=unit,
                               meta={**rec.meta, "preprocess": cfg.to_dict()})
