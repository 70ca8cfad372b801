import json

import pytest

from eegpt.cli import main

from conftest import shared


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("inspect", "synth", "prepare", "cards"):
        assert cmd in out


def test_every_command_s_help_prints_its_options(capsys):
    """Each command's --help (its options' text comes from the configs' comments, which may hold '%')."""
    from eegpt.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0 and "usage: eegpt " + name in capsys.readouterr().out, name
    text = " ".join(sub.choices["copilot-train"].format_help().split())
    assert "10 % of answers" in text and "probe of the EEG tokens, fitted first and kept" in text


def test_inspect_json(capsys):
    path = shared("MW", "eegmat", "Subject00_2.edf")
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sfreq"] == 500 and info["n_samples"] == 31000 and len(info["electrodes"]) == 19
    assert info["set_aside"] == {"EEG A2-A1": "reference", "ECG ECG": "ecg"}
    assert isinstance(info["events"], list)


def test_synth_prepare_inspect(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "c"), "--subjects", "2", "--tasks", "CM", "--workers", "1"]) == 0
    assert main(["prepare", "synthetic-cm", "--source", str(tmp_path / "c"), "--out", str(tmp_path / "s"),
                 "--quiet", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "synthetic-cm: 320 windows of 1 s from 2 recordings, 2 subjects" in out
    assert main(["inspect", str(tmp_path / "c" / "CM" / "sub-001_task-CM_eeg.edf")]) == 0
    assert "events      160: face x80, house x80" in capsys.readouterr().out


@pytest.mark.parametrize("make,args,message", [
    (None, ["inspect", "{d}/missing.edf"], "missing.edf: no such file"),
    (lambda d: (d / "empty.edf").write_bytes(b""), ["inspect", "{d}/empty.edf"], "empty.edf: the file is empty"),
    (lambda d: (d / "junk.edf").write_bytes(b"0" * 3000), ["inspect", "{d}/junk.edf"], "cannot be read as EDF"),
    (None, ["prepare", "faced", "--source", "{d}", "--out", "{d}/s"], "card faced: cannot be prepared yet"),
    (None, ["prepare", "eegmat", "--source", "{d}/none", "--out", "{d}/s"], "no such dataset folder"),
    (None, ["synth", "--out", "{d}/c", "--tasks", "XX"], "--tasks: unknown task(s) XX"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make, args, message):
    if make:
        make(tmp_path)
    code = main([a.format(d=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("eegpt: ") and message in err
    assert "Traceback" not in err


def test_fetch_uses_mnes_fetcher_and_refuses_cards_without_one(tmp_path, capsys, monkeypatch):
    import mne

    calls = []
    monkeypatch.setattr(mne.datasets.eegbci, "load_data", lambda *a, **k: calls.append((a, k)) or [])
    assert main(["fetch", "eegmmidb", "--out", str(tmp_path), "--subjects", "1", "2"]) == 0
    (subjects,), kwargs = calls[0]
    assert subjects == [1, 2] and kwargs["runs"] == [4, 6, 8, 10, 12, 14] and kwargs["path"] == str(tmp_path)
    assert "eegpt prepare eegmmidb --source" in capsys.readouterr().out
    assert main(["fetch", "eegmat", "--out", str(tmp_path)]) == 2
    assert "no downloader" in capsys.readouterr().err


def test_an_unwritable_workdir_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--workdir", str(blocker / "sub"), "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("eegpt: ") and "sub" in err[0]
