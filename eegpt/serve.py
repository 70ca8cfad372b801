"""The copilot as a local web page (gradio): load a recording, see its traces and the class
probabilities over time, read the answer, ask follow-ups in a chat, download the EMR; and watch a
live stream (the loaded recording replayed, or a Lab Streaming Layer stream) predicted second by
second, as ``eegpt stream`` does.

``eegpt serve [--model DIR] [--port 7860]`` binds to 127.0.0.1: the recordings and the answers stay
on this machine. ``--host`` opens it to the network and says so. One model and decoder are loaded
for every visitor; each browser tab keeps its own conversation (``gr.State``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eegpt import TASKS
from eegpt.copilot import Copilot, emr
from eegpt.copilot.dialogue import Conversation, Library
from eegpt.errors import EEGInputError
from eegpt.stream import Streamer, open_source

LOCAL = "127.0.0.1"
TRACE_SECONDS = 10.0  # the traces shown at once; a slider scrolls through the recording
LIVE_SECONDS = 60     # the live plot's span
LIVE_REFRESH_S = 0.25  # at most four page updates a second, however fast a file is replayed (fewer when
                       # drawing them is slow: see live)
FORMATS = (".edf", ".bdf", ".gdf", ".vhdr", ".set", ".fif", ".cnt", ".csv", ".txt", ".xdf", ".npz")


def plot_traces(signals_CxT: np.ndarray, names: list[str], sfreq: float, start_s: float = 0.0,
                seconds: float = TRACE_SECONDS, max_channels: int = 20):
    """A stacked-trace figure (as EEG viewers draw it) of ``seconds`` from ``start_s``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = int(max(0.0, start_s) * sfreq)
    x = signals_CxT[:max_channels, a:a + int(seconds * sfreq)]
    spread = 4 * float(np.median(np.std(x, axis=1))) or 1.0
    t = start_s + np.arange(x.shape[1]) / sfreq
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(x) + 1))
    for i, row in enumerate(x):
        ax.plot(t, row - row.mean() - i * spread, lw=0.6, color="k")
    ax.set_yticks([-i * spread for i in range(len(x))], names[:len(x)])
    ax.set_xlabel("time (s)")
    ax.set_title(f"{len(x)} of {len(signals_CxT)} channels" if len(signals_CxT) > len(x) else "")
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_live(ticks, classes: list[str], seconds: float = LIVE_SECONDS):
    """Each class's probability over the last ``seconds`` of a stream's ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [t for t in ticks if t.end_s > ticks[-1].end_s - seconds]
    t = [x.end_s for x in shown]
    fig, ax = plt.subplots(figsize=(10, 2.6))
    for c in classes:
        ax.plot(t, [x.probs[c] for x in shown], lw=1.2, label=c)
    ax.set_ylim(0, 1)
    ax.set_xlabel("stream time (s)")
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", fontsize="small", ncols=min(len(classes), 5))
    fig.tight_layout()
    plt.close(fig)
    return fig


def live_line(streamer: Streamer, ticks) -> str:
    """The newest second as one line: time, the three most likely classes, the cost, and a flag."""
    tick = ticks[-1]
    top = " · ".join(f"{c} {p:.2f}" for c, p in sorted(tick.probs.items(), key=lambda kv: -kv[1])[:3])
    cost = np.median([sum(t.ms.values()) for t in ticks[1:] or ticks])
    flag = (" — **unlike the training data**" if tick.unfamiliar else
            " — **uncertain**" if max(tick.probs.values()) < streamer.spec.answer_above else "")
    return (f"**{tick.end_s:.0f} s** ({streamer.spec.name}): {top}{flag} — "
            f"{cost:.1f} ms per second (median over {len(ticks)})")


class Session:
    """What one browser tab has loaded: the conversation and the recording's signals."""

    def __init__(self, talk: Conversation, recording, first: dict):
        self.talk, self.recording, self.first = talk, recording, first


class Page:
    """What the web page does when asked, for one loaded copilot: each method is one button's or
    slider's handler (gradio calls it with the components' values, and shows what it returns)."""

    def __init__(self, copilot: Copilot, library: Library, workdir: Path):
        self.copilot, self.library, self.workdir = copilot, library, workdir

    def load(self, upload, picked, task, age, sex):
        """Read a recording: the copilot's first answer, the traces, the probabilities, the EMR files."""
        import gradio as gr

        from eegpt.recording import read

        path = upload or picked
        if not path:
            raise gr.Error("Upload a recording or pick one first.")
        try:
            age = int(age) if age not in (None, "") else None
            sex = None if sex in (None, "", "not given") else sex
            talk = Conversation(self.copilot, path, task=None if task == "auto" else task, age=age, sex=sex,
                                library=self.library)
            first = talk.ask()
            rec = read(path)
        except EEGInputError as err:  # the same one line the command line gives
            raise gr.Error(str(err).splitlines()[0]) from None
        pred = first["prediction"]
        probs_png = self.workdir / f"{Path(path).stem}-probabilities.png"
        pred.plot(probs_png)
        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(first["probs"].items(), key=lambda kv: -kv[1])[:3])
        flags = (" — **out of distribution**" if first["out_of_distribution"] else
                 " — **uncertain**" if first["uncertain"] else "")
        header = f"**{Path(path).name}**: {first['task']} via `{first['head']}` over {first['windows']} windows ({top}){flags}"
        chat = [{"role": "user", "content": first["question"]}, {"role": "assistant", "content": first["answer"]}]
        session = Session(talk, rec, first)
        length = rec.signals.shape[1] / rec.sfreq
        return (session, header, plot_traces(rec.signals, rec.electrodes, rec.sfreq), str(probs_png), chat,
                gr.update(maximum=max(0.0, length - TRACE_SECONDS), value=0.0), *self.emr_files(session))

    def emr_files(self, session: Session):
        """The loaded recording's EMR as Markdown and as a FHIR Bundle (paths to download)."""
        record = session.first["record"]
        stem = self.workdir / Path(session.first["recording"]).stem
        return str(emr.write(record, f"{stem}-emr.md")), str(emr.write(record, f"{stem}-emr.json"))

    def scroll(self, session, start):
        """The traces from ``start`` seconds on."""
        if session is None:
            return None
        rec = session.recording
        return plot_traces(rec.signals, rec.electrodes, rec.sfreq, start)

    def follow_up(self, session, question, chat):
        """The copilot's answer to a follow-up question, added to the chat."""
        import gradio as gr

        if session is None:
            raise gr.Error("Load a recording first.")
        if not question.strip():
            return chat, ""
        r = session.talk.ask(question)
        return chat + [{"role": "user", "content": question}, {"role": "assistant", "content": r["answer"]}], ""

    def live(self, session, source, speed, task):
        """Replays the loaded recording (or reads ``lsl:NAME``): a prediction for every new second."""
        import gradio as gr

        source = (source or "").strip() or (session.first["recording"] if session else "")
        if not source:
            raise gr.Error("Load a recording first, or name a Lab Streaming Layer stream (lsl:NAME).")
        ticks, shown, wait = [], 0.0, LIVE_REFRESH_S
        try:
            rec, chunks = open_source(source, float(speed))
            streamer = Streamer(self.copilot.model, rec.electrodes, rec.sfreq, task=None if task == "auto" else task,
                                source=rec.source)
            for chunk in chunks:
                ticks += streamer.push(chunk)
                if ticks and time.perf_counter() - shown >= wait:
                    shown = time.perf_counter()
                    yield live_line(streamer, ticks), plot_live(ticks, streamer.spec.classes)
                    # drawing and sending the page (gradio does it before resuming us) may take at most
                    # a quarter of the time, so a file replayed as fast as it goes is not slowed by it
                    wait = max(LIVE_REFRESH_S, 3 * (time.perf_counter() - shown))
        except EEGInputError as err:
            raise gr.Error(str(err).splitlines()[0]) from None
        if not ticks:
            raise gr.Error(f"{rec.source}: shorter than one {streamer.spec.window_s:g}-s window")
        yield live_line(streamer, ticks) + " — end of the recording", plot_live(ticks, streamer.spec.classes)


def build(copilot: Copilot, library: Library | None = None, recordings=None):
    """The gradio Blocks app around one loaded copilot (``recordings``: a folder to pick files from):
    the page's layout, each component wired to its ``Page`` handler."""
    import gradio as gr

    page = Page(copilot, library or Library(), Path(tempfile.mkdtemp(prefix="eegpt-serve-")))
    picks = sorted(str(p) for p in Path(recordings).rglob("*") if p.suffix.lower() in FORMATS) if recordings else []
    load, scroll, follow_up, live = page.load, page.scroll, page.follow_up, page.live

    with gr.Blocks(title="EEGPT copilot") as app:
        gr.Markdown("# EEGPT copilot\nLoad an EEG recording: the model reads it, the copilot answers, and you can "
                    "ask follow-up questions. Answers are preliminary, for a clinician's review.")
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="recording", type="filepath", elem_id="recording")
                picked = gr.Dropdown(picks, label="or pick one", value=None, visible=bool(picks))
                task = gr.Dropdown(["auto", *TASKS], value="auto", label="task")
                age = gr.Number(None, label="age (years)", precision=0, minimum=0, maximum=120)
                sex = gr.Radio(["not given", "F", "M"], value="not given", label="sex")
                go = gr.Button("Read the recording", variant="primary", elem_id="read")
            with gr.Column(scale=2):
                header = gr.Markdown(elem_id="header")
                traces = gr.Plot(label="traces")
                start = gr.Slider(0, 1, value=0, step=1, label="start (s)")
                probs = gr.Image(label="class probabilities over time", type="filepath")
        chat = gr.Chatbot(label="copilot", elem_id="chat", height=360)
        with gr.Row():
            question = gr.Textbox(label="follow-up question", elem_id="question", scale=4)
            ask = gr.Button("Ask", elem_id="ask", scale=1)
        with gr.Row():
            md = gr.DownloadButton("EMR (Markdown)", elem_id="emr-md")
            fhir = gr.DownloadButton("EMR (FHIR JSON)", elem_id="emr-json")
        with gr.Accordion("Live: a prediction for every new second", open=False):
            with gr.Row():
                source = gr.Textbox(label="source: empty for the loaded recording, replayed; or lsl:NAME",
                                    elem_id="live-source", scale=3)
                speed = gr.Number(1, label="replay speed (0: as fast as it goes)", minimum=0, elem_id="live-speed",
                                  scale=1)
                start_live = gr.Button("Start", elem_id="live-start", scale=1)
                stop_live = gr.Button("Stop", elem_id="live-stop", scale=1)
            live_now = gr.Markdown(elem_id="live-now")
            live_plot = gr.Plot(label="class probabilities, live")
        streaming = start_live.click(live, [state, source, speed, task], [live_now, live_plot])
        stop_live.click(None, cancels=[streaming])
        go.click(load, [upload, picked, task, age, sex], [state, header, traces, probs, chat, start, md, fhir])
        start.release(scroll, [state, start], traces)
        ask.click(follow_up, [state, question, chat], [chat, question])
        question.submit(follow_up, [state, question, chat], [chat, question])
    return app


def serve(model, copilot=None, host: str = LOCAL, port: int = 7860, docs=None, recordings=None,
          block: bool = True):
    """Load the model and launch the page; returns (app, url)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine unasked
    if recordings and not Path(recordings).is_dir():
        raise EEGInputError(f"{recordings}: --recordings must be a folder of recordings")
    if not 0 < port < 65536:
        raise EEGInputError(f"--port {port}: must be between 1 and 65535")
    if host != LOCAL:
        print(f"warning: serving on {host}: anyone who can reach this address sees the recordings and answers; "
              "patient data leaves this machine", file=sys.stderr)
    app = build(Copilot(model, copilot), Library(docs), recordings)
    _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, share=False,
                           quiet=not block)
    return app, url
