import json
import re

import pytest

from fhir.resources.R4B.bundle import Bundle

from eegpt.copilot import knowledge as kb
from eegpt.cli import main
from eegpt.demo import DemoPlan, demo


PLAN = DemoPlan(subjects=3, preset="tiny", pretrain_steps=3, finetune_steps=4, eval_every=2, copilot_steps=3,
                readout_search="each")


# A miniature demo (corpus, pretraining, fine-tuning, peers, copilot) and everything built on its
# model — the web page in a browser, streaming, int8: several minutes together, so run with -m slow.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    return workdir, demo(workdir, plan=PLAN, progress=False)


def _assert_fallback_reported(c: dict, task: str, label: str) -> None:
    """The answer says whether the guard replaced the decoder's text, and says it truly: the
    decoder's own text (slots filled) is the answer exactly when it passes the faithfulness check
    alone. (A three-step decoder is rarely faithful: what is tested is the flag, not the decoder.)"""
    assert isinstance(c["fallback"], bool) and "decoder_answer" in c
    if c["decoder_answer"] is None:  # withheld: no reading was given, so nothing was decoded
        assert c["uncertain"] or c["out_of_distribution"]
        return
    alone = kb.faithfulness(c["decoder_answer"], task, label, c["probs"])
    faithful = alone["names_prediction"] and not alone["contradiction"] and (
        max(c["probs"].values()) >= kb.UNCERTAIN_BELOW or alone["says_uncertain"])
    assert c["fallback"] == (not faithful)
    assert c["answer"].startswith(c["decoder_answer"]) == faithful


def test_a_miniature_demo_writes_the_report(demo_run):
    tmp_path, report = demo_run
    plan = PLAN
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["tasks"].keys() == {"ER", "MI", "MW", "SS", "CM"}
    from sklearn.metrics import balanced_accuracy_score

    from eegpt.demo import BASELINES
    from eegpt.model import load
    from eegpt.store import Store

    model = load(tmp_path / "model")  # the report's scores are the saved model's, recomputed here
    assert not model.familiar  # one training subject per task: too few for the out-of-distribution check
    for task, n in (("ER", 4), ("MI", 4), ("MW", 2), ("SS", 5), ("CM", 2)):
        r = saved["tasks"][task]
        store = Store(tmp_path / "stores" / task.lower())
        truth = store.labels[store.indices("test")]  # from the store, not from the model's run
        run = model.run(store, "test")
        assert r["n_classes"] == n and r["test_windows"] == len(truth)
        assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, run["probs"].argmax(1)))
        assert set(r["baselines"]) == set(BASELINES[task]) and r["best_baseline"] in BASELINES[task]
        assert r["baseline_balanced_accuracy"] == max(b["balanced_accuracy"] for b in r["baselines"].values())
        # what EEGPT was: the step fine-tuning kept, and at step 0 the views its linear start chose
        tuned = json.loads((tmp_path / "finetune" / "finetune.json").read_text())
        k = r["kept"]
        assert k["step"] == tuned["best_step"]
        if k["step"] == 0:
            assert k["views"] == tuned["readout_start"][store.name]["view"].split("+") and k["what"] == "linear start"
        else:
            assert k["what"] == "graph" and "ete" in k["views"]
        assert k["ete_read"] == ("ete" in k["views"]) and f"step {k['step']}" in k["text"]
    assert (tmp_path / "tsne.png").exists() and (tmp_path / "embeddings.npz").exists()
    assert report["stage_seconds"].keys() == {"corpus and stores", "pretrain", "finetune", "evaluate", "tsne", "copilot"}
    # the demo ends with a copilot answer and an EMR for a held-out recording
    c = saved["copilot"]
    assert c["out_of_distribution"] is False
    label = max(c["probs"], key=c["probs"].get)
    _assert_fallback_reported(c, "ER", label)
    assert "## Diagnosis" in (tmp_path / "emr.md").read_text()
    Bundle.model_validate(json.loads((tmp_path / "emr.json").read_text()))
    peers = {f: f.stat().st_mtime_ns for f in (tmp_path / "peers").iterdir()}  # each peer's score, kept
    assert len(peers) == sum(len(names) for names in BASELINES.values())
    start = json.loads((tmp_path / "finetune" / "finetune.json").read_text())["readout_start"]
    again = demo(tmp_path, plan=plan, progress=False)  # every stage resumes: nothing is trained twice
    assert json.loads((tmp_path / "finetune" / "finetune.json").read_text())["readout_start"] == start
    assert {f: f.stat().st_mtime_ns for f in (tmp_path / "peers").iterdir()} == peers
    assert all(again["tasks"][t]["baselines"] == report["tasks"][t]["baselines"] for t in BASELINES)
    assert json.loads((tmp_path / "finetune" / "finetune.json").read_text())["resumed_from"] == 4
    assert json.loads((tmp_path / "ete" / "metrics.json").read_text())["resumed_from"] == 3
    assert again["tasks"]["SS"]["balanced_accuracy"] == report["tasks"]["SS"]["balanced_accuracy"]


def test_copilot_command_answers_for_a_file_and_refuses_bad_input(demo_run, tmp_path, capsys):
    model_dir, report = demo_run
    edf = report["copilot"]["recording"]
    out = tmp_path / "record.json"
    assert main(["copilot", edf, "--model", str(model_dir), "--age", "61", "--sex", "M", "--json",
                 "--emr-out", str(out)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["task"] == "ER" and r["label"] == max(r["probs"], key=r["probs"].get)
    _assert_fallback_reported(r, "ER", r["label"])
    bundle = json.loads(out.read_text())
    Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 1 and "DiagnosticReport" in kinds and "Observation" in kinds
    for argv, says in (([str(tmp_path / "missing.edf"), "--model", str(model_dir)], "missing.edf"),
                       ([edf, "--model", str(tmp_path / "nowhere")], "nowhere"),
                       ([edf, "--model", str(model_dir), "--emr-out", str(tmp_path / "x.txt")], "x.txt")):
        assert main(["copilot", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "x.txt").exists()


def test_the_eeg_only_copilot_states_its_own_reading_and_says_what_made_it(demo_run, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    model_dir, report = demo_run
    eo = tmp_path / "eeg-only"
    assert main(["copilot-train", "--instruct", "--finetuned", str(model_dir), "--workdir", str(eo), "--steps", "4",
                 "--eval-every", "2", "--batch-size", "8", "--quiet"]) == 0
    meta = json.loads((eo / "instruct.json").read_text())
    assert set(meta["heads"]) == {f"synthetic-{t}" for t in ("er", "mi", "mw", "ss", "cm")}
    assert meta["kept_step"] in (2, 4) and "not the graph or its heads" in meta["reads"]
    assert "linear probe" in meta["reads"] and all("C" in h["probe"] for h in meta["heads"].values())  # LP-FT
    assert f"kept its step {meta['kept_step']} (chosen on validation subjects)" in capsys.readouterr().out
    edf = report["copilot"]["recording"]
    assert main(["copilot", edf, "--model", str(model_dir), "--json"]) == 0
    by_head = json.loads(capsys.readouterr().out)
    assert main(["copilot", edf, "--model", str(model_dir), "--copilot", str(eo), "--eeg-only", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["eeg_only"] and r["head"] == by_head["head"] and r["windows"] == by_head["windows"]
    assert r["probs"] != by_head["probs"]  # its own reading, not the head's
    assert r["answer_above"] == meta["heads"][r["head"]]["answer_above"]  # and its own reliable confidence
    assert "Read from the EEG alone" in r["answer"] and f"step {meta['kept_step']}" in r["answer"]
    if r["uncertain"]:
        assert r["answer"].startswith("The reading is uncertain")
    else:
        _assert_fallback_reported(r, "ER", r["label"])
    # a conversation reads from the EEG alone too: follow-ups keep the decoder's reading and provenance
    import io

    sys_stdin = io.StringIO("What do you suggest?\nquit\n")
    transcript = tmp_path / "talk.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", sys_stdin)
        assert main(["chat", edf, "--model", str(model_dir), "--copilot", str(eo), "--eeg-only",
                     "--transcript", str(transcript)]) == 0
    turns = json.loads(transcript.read_text())
    assert len(turns) == 2 and all("Read from the EEG alone" in t["answer"] for t in turns)
    for t in turns:  # what it cites follows its own reading, not the head's
        assert not kb.faithfulness(t["answer"], "ER", r["label"], r["probs"])["contradiction"], t["answer"]
    capsys.readouterr()
    # without an EEG-only decoder, one line saying how to train one
    assert main(["copilot", edf, "--model", str(model_dir), "--copilot", str(tmp_path), "--eeg-only"]) == 2
    assert "copilot-train --instruct" in capsys.readouterr().err
    # the evaluation scores the heads as the demo's report did, beside the decoder
    path = Path(__file__).parents[1] / "experiments" / "eeg_only_eval.py"
    spec = importlib.util.spec_from_file_location("eeg_only_eval", path)
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    assert ev.main(["--model", str(model_dir), "--copilot", str(eo), "--answers", "2", "--own-readings", "0", "1",
                    "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    for task in ("ER", "MI", "MW", "SS", "CM"):
        row = rows[f"synthetic-{task.lower()}"]
        assert row["head"] == pytest.approx(report["tasks"][task]["balanced_accuracy"])
        assert row["gap"] == pytest.approx(row["eeg_only"] - row["head"]) and row["answers_checked"] == 2
        # the kept weight is 0: the class it states is its probe's
        assert row["by_own_reading"]["0"] == pytest.approx(row["eeg_only"]) == pytest.approx(row["linear_reading"])
        assert set(row["by_own_reading"]) == {"0", "1"}
    # the probe offered its head's candidates chooses as the head's linear start chose (same windows,
    # same validation subjects), and states the head's class
    path = Path(__file__).parents[1] / "experiments" / "eeg_only_probe_views.py"
    spec = importlib.util.spec_from_file_location("eeg_only_probe_views", path)
    pv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pv)
    assert pv.main(["--model", str(model_dir), "--json"]) == 0
    start = json.loads((model_dir / "finetune" / "finetune.json").read_text())["readout_start"]
    for name, row in json.loads(capsys.readouterr().out)["rows"].items():
        mirror = row["the head's candidates"]
        assert (mirror["views"], mirror["C"]) == (start[name]["view"], start[name]["C"]), name
        assert mirror["test"] == pytest.approx(row["head"], abs=0.02), name


def test_copilot_reads_a_numbered_cap_given_its_montage(demo_run, tmp_path, capsys):
    """A cap of numbered channels without positions is answered once its montage file is given, as
    the same recording by name is (``--montage``; ``--place montage`` interpolates onto the head's sites)."""
    import numpy as np

    from eegpt.electrodes import position
    from eegpt.recording import read

    model_dir, report = demo_run
    edf = report["copilot"]["recording"]
    rec = read(edf)
    numbered = [f"Ch{i + 1}" for i in range(len(rec.electrodes))]  # (E1… would be read as an EGI net)
    np.savez(tmp_path / "numbered.npz", data=rec.signals, ch_names=np.array(numbered), sfreq=rec.sfreq)
    (tmp_path / "cap.sfp").write_text("".join(f"{n} {x:.5f} {y:.5f} {z:.5f}\n" for n, (x, y, z) in
                                              zip(numbered, (1.05 * position(e) for e in rec.electrodes))))
    answers = {}
    for name, extra in (("by name", [edf]), ("numbered", [str(tmp_path / "numbered.npz"), "--montage",
                                                          str(tmp_path / "cap.sfp")]),
                        ("onto the montage", [str(tmp_path / "numbered.npz"), "--montage", str(tmp_path / "cap.sfp"),
                                              "--place", "montage"])):
        assert main(["copilot", *extra, "--model", str(model_dir), "--json"]) == 0, name
        answers[name] = json.loads(capsys.readouterr().out)
    for name in ("numbered", "onto the montage"):
        assert answers[name]["task"] == answers["by name"]["task"] == "ER"
        assert answers[name]["probs"] == pytest.approx(answers["by name"]["probs"], abs=1e-3), name
    assert main(["copilot", str(tmp_path / "numbered.npz"), "--model", str(model_dir)]) == 2
    assert "--montage" in capsys.readouterr().err


def test_chat_answers_follow_ups_with_citations_and_stays_faithful(demo_run, tmp_path, capsys, monkeypatch):
    import io

    model_dir, report = demo_run
    edf = report["copilot"]["recording"]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ward.md").write_text("# Review\n\nEvery assisted EEG reading is reviewed by the ward's neurologist.\n")
    transcript = tmp_path / "talk.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("What do you suggest?\nWho reviews the reading?\nquit\nnever asked\n"))
    assert main(["chat", edf, "--model", str(model_dir), "--docs", str(docs), "--transcript", str(transcript)]) == 0
    out = capsys.readouterr().out
    turns = json.loads(transcript.read_text())
    assert [t["question"] for t in turns] == ["What is the patient's emotional state?", "What do you suggest?",
                                              "Who reviews the reading?"]  # "quit" ended it
    assert "never asked" not in out and "Sources:\n[1]" in out
    assert any(c["source"] == "ward.md § Review" for c in turns[2]["citations"])
    probs = report["copilot"]["probs"]
    label = max(probs, key=probs.get)
    for t in turns:  # every answer, cited passages included, names only what the reading allows
        assert t["citations"] and all(f"[{c['n']}] {c['source']}" in t["answer"] for c in t["citations"])
        assert not kb.faithfulness(t["answer"], "ER", label, probs)["contradiction"]
    assert main(["chat", edf, "--model", str(model_dir), "--transcript", str(transcript)]) == 2  # not replaced
    assert "exists" in capsys.readouterr().err


def test_below_the_validated_confidence_the_copilot_gives_no_finding(demo_run):
    from eegpt.copilot import Copilot, emr
    from eegpt.model import load

    model_dir, report = demo_run
    model = load(model_dir)
    edf = report["copilot"]["recording"]
    sure = Copilot(model.calibrated({}, {"synthetic-er": 0.0}), copilot=model_dir / "model" / "copilot").ask(edf)
    assert not sure["uncertain"] and "no finding is given" not in sure["answer"]
    strict = Copilot(model.calibrated({}, {"synthetic-er": 0.999}), copilot=model_dir / "model" / "copilot")
    unsure = strict.ask(edf)
    assert unsure["uncertain"] and "uncertain" in unsure["answer"] and "no finding is given" in unsure["answer"]
    ranked = sorted(unsure["probs"], key=unsure["probs"].get, reverse=True)
    assert kb.faithfulness(unsure["answer"], "ER", ranked[0], unsure["probs"], uncertain=True) == {
        "names_prediction": True, "contradiction": False, "says_uncertain": True}
    assert "not determined (the reading is uncertain" in emr.markdown(unsure["record"])


@pytest.mark.slow
def test_a_recording_unlike_the_training_data_gets_no_reading(tmp_path, capsys):
    """A synthetic-data model, asked about a real EEGMAT recording, says it is out of distribution
    instead of answering; a held-out synthetic recording of the same task gets its reading."""
    from conftest import shared
    from eegpt.copilot import Copilot, emr
    from eegpt.model import load
    from eegpt.predict import predict

    real = shared("MW", "eegmat", "Subject00_2.edf")
    demo(tmp_path, plan=DemoPlan(subjects=6, preset="tiny", pretrain_steps=20, finetune_steps=20, eval_every=10,
                                 copilot_steps=5, readout_search="each"), progress=False)
    model = load(tmp_path / "model")
    assert set(model.familiar) == {h.name for h in model.cfg.heads}  # 4 training subjects: every head checks
    held_out = sorted((tmp_path / "corpus" / "MW").glob("sub-006_*_eeg.edf"))[0]  # a test subject
    familiar, unlike = predict(model, held_out, task="MW"), predict(model, real, task="MW")
    assert familiar.unfamiliar < 0.1 and not familiar.out_of_distribution
    assert unlike.unfamiliar > 0.9 and unlike.to_dict()["out_of_distribution"]
    asked = Copilot(tmp_path).ask(real, task="MW", question="Is the patient under mental workload?")
    assert asked["out_of_distribution"] and "unlike the data the model was trained on" in asked["answer"]
    assert not any(kb.classes_of("MW")[c].name in asked["answer"] for c in ("rest", "arithmetic"))
    assert "not determined" in emr.markdown(asked["record"])
    assert main(["predict", str(real), "--model", str(tmp_path), "--task", "MW"]) == 0
    assert "unlike the data the model was trained on" in capsys.readouterr().out


# Playwright's and gradio's own event loops and sockets are closed by the garbage collector, not by
# them: their ResourceWarnings say nothing about this project's code.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_web_page_answers_takes_a_follow_up_and_hands_out_the_emr(demo_run, tmp_path):
    """In a real headless browser (Chromium driven by Playwright): load a file, read the answer, ask a
    follow-up, download the EMR as FHIR JSON and validate it."""
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the test extra)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no system Chromium (Debian's package 'chromium'; .ci/run installs it)")
    from eegpt.serve import serve

    model_dir, report = demo_run
    edf = report["copilot"]["recording"]
    app, url = serve(model_dir, port=_free_port(), block=False)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium)
            page = browser.new_page()
            page.goto(url)
            page.locator("#recording input[type=file]").set_input_files(edf)
            page.locator("#read").click()
            page.locator("#chat").get_by_text("Sources:").first.wait_for(timeout=60_000)
            assert "synthetic-er" in page.locator("#header").inner_text()
            page.locator("#question textarea").fill("What do you suggest?")
            page.locator("#ask").click()
            # the second answer rendered, not only its bubble (a busy host shows "Loading content" first)
            page.wait_for_function("document.querySelector('#chat').innerText.split('Sources:').length >= 3",
                                   timeout=60_000)
            text = page.locator("#chat").inner_text()
            assert text.count("Sources:") == 2 and "What do you suggest?" in text
            with page.expect_download() as download:
                page.locator("#emr-json").click()
            bundle = json.loads(open(download.value.path()).read())
            # live: the loaded recording replayed as fast as it goes, a prediction every second
            page.get_by_text("Live: a prediction for every new second").click()
            speed = page.locator("#live-speed input")
            for _ in range(20):  # the panel's first render may put back the default (1: a 386-s replay)
                speed.fill("0")
                speed.press("Tab")  # committed (blur) before Start reads it
                page.wait_for_timeout(500)
                if speed.input_value() == "0":  # and it held for half a second
                    break
            sync_api.expect(speed).to_have_value("0")
            page.locator("#live-start").click()
            try:
                page.locator("#live-now").get_by_text("end of the recording").wait_for(timeout=180_000)
            except sync_api.TimeoutError:  # say how far the replay got: slow, or stalled
                pytest.fail(f"the live replay did not end in 180 s; it shows: {page.locator('#live-now').inner_text()!r}")
            live = page.locator("#live-now").inner_text()
            browser.close()
    finally:
        app.close()
        import gc

        gc.collect()  # their leftovers are collected here, under this test's warning filter
    classes = report["copilot"]["probs"]
    assert re.match(r"\d+ s \(synthetic-er\): (\S+) ", live) and live.split(": ")[1].split(" ")[0] in classes, live
    Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "DiagnosticReport" in kinds and "Observation" in kinds


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streaming_equals_offline_prediction_of_the_recording_cut_at_each_second(demo_run, capsys):
    import numpy as np

    from eegpt.model import load
    from eegpt.predict import predict
    from eegpt.recording import read
    from eegpt.stream import Streamer, replay

    model_dir, report = demo_run
    model = load(model_dir)
    rec, chunks = replay(report["copilot"]["recording"], speed=0, chunk_s=0.3)  # chunks across second boundaries
    streamer = Streamer(model, rec.electrodes, rec.sfreq, task="ER")
    ticks = [t for c in chunks for t in streamer.push(c)]
    spec = streamer.spec
    assert [t.end_s for t in ticks] == list(np.arange(spec.window_s, int(rec.duration) + 1))  # every second
    assert streamer.dropped > 0  # the buffer was trimmed, so later ticks test the trimming too
    stride = spec.stride_samples / spec.sfreq
    compared = 0
    for tick in ticks[:: 3]:
        offline = predict(model, rec, task="ER", seconds=tick.end_s)
        if abs(offline.starts_s[-1] + spec.window_s - tick.end_s) < 1e-9:  # its last window ends there too
            np.testing.assert_allclose(list(tick.probs.values()), offline.probs[-1], atol=1e-4)
            compared += 1
    assert compared >= 3, (compared, stride)
    with pytest.raises(Exception, match=r"shape"):
        streamer.push(np.zeros((3, 10)))
    bad = np.zeros((len(rec.electrodes), 10))
    bad[0, 3] = np.nan
    with pytest.raises(Exception, match="NaN"):
        streamer.push(bad)
    # the command prints one line per second and the median cost
    assert main(["stream", report["copilot"]["recording"], "--model", str(model_dir), "--speed", "0",
                 "--seconds", "12", "--task", "ER"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 12 - int(spec.window_s) + 2 and "median per new second" in out[-1]
    assert read(report["copilot"]["recording"]).sfreq == rec.sfreq


def test_a_lab_streaming_layer_stream_is_predicted_like_the_file_it_carries(demo_run):
    import threading
    import time

    import numpy as np

    pylsl = pytest.importorskip("pylsl", reason="LSL streams need pylsl (the live extra)")
    from eegpt.recording import read
    from eegpt.stream import stream

    model_dir, report = demo_run
    rec = read(report["copilot"]["recording"])
    info = pylsl.StreamInfo("eegpt-test-stream", "EEG", len(rec.raw_names) + 1, rec.sfreq, "float32", "eegpt-test")
    channels = info.desc().append_child("channels")
    for name in [*rec.raw_names, "ECG"]:  # a non-EEG channel is set aside, as in a file
        channels.append_child("channel").append_child_value("label", name)
    outlet = pylsl.StreamOutlet(info)
    samples = np.vstack([rec.signals, np.zeros((1, rec.n_samples), np.float32)]).T[: int(10 * rec.sfreq)]

    def push():
        while not outlet.have_consumers():
            time.sleep(0.01)
        for a in range(0, len(samples), 32):
            outlet.push_chunk(samples[a:a + 32].tolist())
            time.sleep(0.002)

    threading.Thread(target=push, daemon=True).start()
    live = stream("lsl:eegpt-test-stream", model_dir, task="ER", seconds=10)
    replayed = stream(report["copilot"]["recording"], model_dir, task="ER", speed=0, seconds=10)
    assert [t.end_s for t in live] == [t.end_s for t in replayed]
    for a, b in zip(live, replayed):
        np.testing.assert_allclose(list(a.probs.values()), list(b.probs.values()), atol=1e-4)


def test_an_int8_model_is_a_quarter_of_the_weights_and_answers_as_the_float_one(demo_run, tmp_path, capsys):
    import numpy as np

    from eegpt.copilot import decoder as C
    from eegpt.model import load
    from eegpt.predict import predict
    from eegpt.int8 import INT8_FILE, MIN_SIZE

    model_dir, report = demo_run
    out = tmp_path / "int8"
    assert main(["quantize", "--model", str(model_dir), "--out", str(out)]) == 0
    assert "int8 model" in capsys.readouterr().out
    assert (out / INT8_FILE).exists() and (out / "copilot" / INT8_FILE).exists()
    float_dir = model_dir / "model"
    import jax

    matrices = {jax.tree_util.keystr(k): np.asarray(x) for k, x in
                jax.tree_util.tree_flatten_with_path(load(float_dir).params)[0]
                if np.ndim(x) >= 2 and np.size(x) >= MIN_SIZE and not jax.tree_util.keystr(k).startswith("['norm']")}
    with np.load(out / INT8_FILE) as z:
        stored = {k: z[k] for k in z.files}
    assert matrices and {k + "#q" for k in matrices} <= set(stored)  # every weight matrix went through int8
    int8 = sum(stored[k + "#q"].nbytes for k in matrices)
    scales = sum(stored[k + "#scale"].nbytes for k in matrices)
    floats = sum(x.nbytes for x in matrices.values())
    assert all(stored[k + "#q"].dtype == np.int8 for k in matrices) and int8 * 4 == floats  # a quarter, exactly
    assert int8 + scales < 0.3 * floats  # the per-channel scales add little
    edf = report["copilot"]["recording"]
    a, b = predict(load(float_dir), edf, task="ER"), predict(load(out), edf, task="ER")
    assert np.abs(a.probs - b.probs).max() < 0.05 and a.label == b.label
    (dec, _), (dec8, _) = C.load(float_dir / "copilot"), C.load(out / "copilot")
    w, w8 = C.parameters(dec), C.parameters(dec8)
    leaves, leaves8 = jax_leaves(w), jax_leaves(w8)
    assert any(not np.array_equal(x, y) for x, y in zip(leaves, leaves8))  # the weights did go through int8
    for x, y in zip(leaves, leaves8):
        assert np.abs(np.asarray(x) - np.asarray(y)).max() <= np.abs(np.asarray(x)).max() / 127 + 1e-6
    assert main(["copilot", edf, "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == a.label
    assert main(["quantize", "--model", str(model_dir), "--out", str(out)]) == 2  # not replaced
    assert "exists" in capsys.readouterr().err
    (out / INT8_FILE).write_bytes(b"not an npz")
    with pytest.raises(Exception, match="damaged"):
        load(out)


def jax_leaves(tree):
    import jax

    return jax.tree.leaves(tree)
