"""Live EEG: a prediction for every new second, from the window that ends there.

``Streamer(model, electrodes, sfreq)`` takes samples as they arrive (``push``, µV, any chunk size)
and, each time a whole second completes, scores the head's window ending at that second. What it
computes is defined by the offline path: the tick at second ``t`` equals the last window of
``predict(model, recording, seconds=t)`` — the recording cut at ``t`` and prepared with the head's
recipe, whose zero-phase filters treat the newest samples as the offline path treats a recording's
end. (Tested; the only difference is float rounding.) The buffer keeps what that needs: the window,
the filter's half-length and the resampler's margin before it (for the default 0.1 Hz high-pass
about 17 s), trimmed in whole seconds.

What is reused from one second to the next: the filter design, the graph batch (only its tokens
change) and the compiled head, which computes that head alone. Not the
ETE's keys and values: a head reads windows whose tokens start at position 1, so the window one
second later puts every token at a new position and the encoder's causal state from the previous
second does not apply to it; reusing it would score windows unlike those the head was trained on.

Sources: a file replayed at ``speed`` times real time (0: as fast as possible), or a Lab Streaming
Layer stream by name (``lsl:NAME``, with ``pylsl``), its channel labels read as a file's are.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from eegpt.errors import EEGInputError
from eegpt.model import EEGPT, load
from eegpt.pipeline import tokenize
from eegpt.predict import choose_head, window_batches
from eegpt.preprocess import fir_kernel, preprocess
from eegpt.recording import Recording, read


@dataclass
class Tick:
    """The prediction for the window ending at ``end_s`` seconds into the stream."""

    end_s: float
    label: str
    probs: dict[str, float]
    unfamiliar: bool | None            # unlike the training windows (None: the model has no reference)
    ms: dict[str, float] = field(default_factory=dict)  # preprocess, model: milliseconds this second cost


class Streamer:
    """Predicts each new second of a live recording (see the module)."""

    def __init__(self, model, electrodes: list[str], sfreq: float, *, task=None, head=None, source="<stream>"):
        self.model = model if isinstance(model, EEGPT) else load(model)
        self.spec = self.model.cfg.head(choose_head(self.model, electrodes, task, head))
        if sfreq < self.spec.recipe.min_sfreq or sfreq != int(sfreq):
            raise EEGInputError(f"{source}: a stream at {sfreq:g} Hz cannot be prepared by the {self.spec.name} "
                                f"head's recipe (a whole number of Hz, at least {self.spec.recipe.min_sfreq:g})")
        self.electrodes, self.sfreq, self.source = list(electrodes), float(sfreq), source
        self.second = int(sfreq)
        half = (len(fir_kernel(self.spec.recipe, self.sfreq)) - 1) // 2
        before = half + int(0.5 * sfreq)  # what filter_resample's margin reads before a window
        self.window_in = math.ceil(self.spec.window_s * sfreq)
        self.keep = math.ceil((self.window_in + before) / sfreq + 1) * self.second  # whole seconds
        # One graph batch reused every second (the montage does not change): only its tokens are new
        (self.batch, _), = window_batches(self.model, Recording(
            np.zeros((len(electrodes), self.spec.window_samples), np.float32), self.electrodes, self.spec.sfreq),
            [0], self.spec.window_samples, 1, len(electrodes))
        self.tokens_key = "tokens_KxNxP" if "tokens_KxNxP" in self.batch else "tokens_BxExNxP"
        self.scorer = self.model.head_scorer(self.spec.name)
        self.buffer = np.zeros((len(electrodes), 0), np.float32)
        self.dropped = 0          # samples trimmed from the buffer's front (whole seconds)
        self.ticked = 0           # seconds already scored or skipped

    @property
    def received_s(self) -> float:
        return (self.dropped + self.buffer.shape[1]) / self.sfreq

    def push(self, samples_CxT) -> list[Tick]:
        """Append samples ([electrodes, T] µV); one Tick per whole second completed with a full
        window behind it."""
        x = np.asarray(samples_CxT, np.float32)
        if x.ndim != 2 or x.shape[0] != len(self.electrodes):
            raise EEGInputError(f"{self.source}: a chunk of shape {x.shape}; expected [{len(self.electrodes)}, T]")
        if not np.isfinite(x).all():
            raise EEGInputError(f"{self.source}: NaN or infinite samples at {self.received_s:.1f} s")
        self.buffer = np.concatenate([self.buffer, x], axis=1)
        ticks = []
        while (self.ticked + 1) * self.second <= self.dropped + self.buffer.shape[1]:
            self.ticked += 1
            end = self.ticked * self.second
            if end >= self.window_in:
                ticks.append(self._score(end))
        excess = (self.dropped + self.buffer.shape[1] - self.keep) // self.second * self.second - self.dropped
        if excess > 0:
            self.buffer, self.dropped = self.buffer[:, excess:], self.dropped + excess
        return ticks

    def _score(self, end: int) -> Tick:
        t0 = time.perf_counter()
        w = self.spec.window_samples
        rec = preprocess(Recording(self.buffer[:, :end - self.dropped], self.electrodes, self.sfreq,
                                   source=self.source), self.spec.recipe, last=w)
        t1 = time.perf_counter()
        tokens = tokenize(rec.signals, self.model.cfg.tokens)
        self.batch[self.tokens_key] = tokens if self.tokens_key == "tokens_KxNxP" else tokens[None]
        probs, profile = self.scorer(self.batch)
        probs = np.asarray(probs)[0]
        far = self.model.unfamiliar_profiles(self.spec.name, np.asarray(profile))
        t2 = time.perf_counter()
        return Tick(end / self.sfreq, self.spec.classes[int(probs.argmax())],
                    {c: float(p) for c, p in zip(self.spec.classes, probs)},
                    None if far is None else bool(far[0]),
                    {"preprocess": 1e3 * (t1 - t0), "model": 1e3 * (t2 - t1)})


def replay(path, speed: float = 1.0, chunk_s: float = 0.25, **read_kw):
    """(recording, chunks): a file read as :func:`eegpt.read` reads it, handed out in chunks of
    ``chunk_s`` seconds at ``speed`` times real time (0: as fast as possible)."""
    if speed < 0:
        raise EEGInputError(f"--speed {speed}: must be >= 0 (0: as fast as possible)")
    rec = read(path, **read_kw)

    def chunks():
        step = max(1, int(chunk_s * rec.sfreq))
        start = time.perf_counter()
        for a in range(0, rec.n_samples, step):
            if speed:
                time.sleep(max(0.0, start + a / rec.sfreq / speed - time.perf_counter()))
            yield rec.signals[:, a:a + step]

    return rec, chunks()


def lsl(name: str, timeout: float = 10.0):
    """(recording header, chunks) of the Lab Streaming Layer stream called ``name``: its channel
    labels read as a file's channel names are (non-EEG set aside), samples taken as µV."""
    try:
        import pylsl
    except ImportError:
        raise EEGInputError("lsl: reading a Lab Streaming Layer stream needs pylsl (pip install pylsl)") from None
    import mne

    found = pylsl.resolve_byprop("name", name, timeout=timeout)
    if not found:
        raise EEGInputError(f"lsl:{name}: no Lab Streaming Layer stream of that name within {timeout:g} s")
    inlet = pylsl.StreamInlet(found[0])
    info = inlet.info()
    sfreq, n = info.nominal_srate(), info.channel_count()
    if sfreq <= 0:
        raise EEGInputError(f"lsl:{name}: an irregular-rate stream; EEG needs a nominal sampling rate")
    labels, ch = [], info.desc().child("channels").child("channel")
    for _ in range(n):
        labels.append(ch.child_value("label"))
        ch = ch.next_sibling()
    if len(set(labels)) != n or "" in labels:
        raise EEGInputError(f"lsl:{name}: the stream's description does not name its {n} channels")
    # Only the names decide which rows are EEG: placeholder samples (not flat, or they would be refused)
    first = np.random.default_rng(0).standard_normal((n, int(sfreq))) * 1e-6
    header = read(mne.io.RawArray(first, mne.create_info(labels, sfreq, "eeg"), verbose="error"))
    rows = [labels.index(r) for r in header.raw_names]
    header = Recording(np.zeros((len(rows), 0), np.float32), header.electrodes, sfreq, header.raw_names,
                       set_aside=header.set_aside, source=f"lsl:{name}")

    def chunks():
        while True:
            data, _ = inlet.pull_chunk(timeout=1.0)
            if data:
                yield np.asarray(data, np.float32).T[rows]

    return header, chunks()


def open_source(source, speed: float = 1.0):
    """(recording header, chunks) of ``lsl:NAME`` (:func:`lsl`) or of a file replayed (:func:`replay`)."""
    source = str(source)
    return lsl(source[4:]) if source.startswith("lsl:") else replay(source, speed)


def stream(source, model, *, task=None, head=None, speed: float = 1.0, seconds: float | None = None,
           on_tick=None) -> list[Tick]:
    """Run a file (``path``) or an LSL stream (``lsl:NAME``) through a :class:`Streamer`; calls
    ``on_tick(tick)`` for each new second and returns every tick (stops after ``seconds``)."""
    rec, chunks = open_source(source, speed)
    streamer = Streamer(model, rec.electrodes, rec.sfreq, task=task, head=head, source=rec.source)
    ticks = []
    for chunk in chunks:
        for tick in streamer.push(chunk):
            ticks.append(tick)
            if on_tick:
                on_tick(tick)
        if seconds is not None and streamer.received_s >= seconds:
            break
    if not ticks:
        raise EEGInputError(f"{rec.source}: {streamer.received_s:.1f} s streamed, shorter than one "
                            f"{streamer.spec.window_s:g}-s window of the {streamer.spec.name} head")
    return ticks
