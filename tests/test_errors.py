"""Bad input is one line naming the file; a bug in the project's own code keeps its traceback."""

from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

import eegpt
from eegpt import datasets, mne_io, recording
from eegpt.cli import main
from eegpt.errors import EEGInputError, TrainingError, from_reader
from eegpt.recording import read


def _ours(module, source: str):
    """A function compiled as if it were written in ``module``'s file: it stands for a bug in the
    project's own code (the innermost frame of what it raises lies in the package)."""
    namespace = {}
    exec(compile(source, module.__file__, "exec"), namespace)
    return namespace["bug"]


def test_from_reader_tells_a_readers_error_from_ours(tmp_path):
    import mne

    (tmp_path / "x.fif").write_bytes(b"not a fif file at all" * 10)
    with pytest.raises(Exception) as theirs:
        mne.io.read_raw_fif(tmp_path / "x.fif", verbose="error")
    assert from_reader(theirs.value)
    with pytest.raises(ValueError) as ours:
        _ours(recording, "def bug(path):\n    raise ValueError('a bug')\n")(tmp_path)
    assert not from_reader(ours.value)


def test_a_mat_file_not_laid_out_as_its_dataset_says_is_one_line(tmp_path):
    folder = tmp_path / "cho"
    folder.mkdir()
    savemat(folder / "s01.mat", {"eeg": {"imagery_left": np.zeros((68, 10)), "srate": 512}})  # no imagery_event
    with pytest.raises(EEGInputError, match=r"s01.mat: not laid out as a cho2017-mat file \(no field 'imagery_event'"):
        read(folder / "s01.mat", distributed="cho2017-mat")
    savemat(folder / "s02.mat", {"eeg": {"imagery_left": np.zeros((68, 10)), "imagery_right": np.zeros((68, 10)),
                                         "imagery_event": np.zeros(10), "srate": "fast"}})
    with pytest.raises(EEGInputError, match=r"s02.mat: not laid out .*srate holds .* not numbers"):
        read(folder / "s02.mat", distributed="cho2017-mat")
    savemat(folder / "s03.mat", {"data": np.zeros(3)})  # no struct eeg at all
    assert main(["inspect", str(folder / "s03.mat"), "--format", "cho2017-mat"]) == 2


def test_a_bug_in_a_dataset_reader_keeps_its_traceback(tmp_path, monkeypatch):
    (tmp_path / "s01.mat").write_bytes(b"MATLAB 5.0" + bytes(200))
    monkeypatch.setitem(datasets.READERS, "cho2017-mat", _ours(datasets, "def bug(path):\n    return {}['eeg']\n"))
    with pytest.raises(KeyError):  # not "not laid out": the file was never the problem
        read(tmp_path / "s01.mat", distributed="cho2017-mat")


def test_a_damaged_recording_is_one_line_but_a_bug_behind_mne_is_not(tmp_path, monkeypatch):
    bad = tmp_path / "rec.cnt"
    bad.write_bytes(b"\x00\x01garbage" * 200)
    with pytest.raises(EEGInputError, match=r"rec.cnt: (cannot be read as CNT|truncated)"):
        read(bad)
    # MNE refuses the file, then our own fallback reader fails: that is our bug, shown as it is
    monkeypatch.setattr(mne_io, "other_cnt", _ours(mne_io, "def bug(path):\n    raise ValueError('ours')\n"))
    with pytest.raises(ValueError, match="ours") as err:
        read(bad)
    assert not isinstance(err.value, EEGInputError)


def test_a_damaged_npz_is_one_line(tmp_path):
    (tmp_path / "a.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(EEGInputError, match="a.npz: cannot be read as NPZ"):
        read(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", data=np.array([["x", "y"]]), sfreq=256.0, ch_names=np.array(["Cz"]))
    with pytest.raises(EEGInputError, match="b.npz: 'data' holds .* not numbers"):
        read(tmp_path / "b.npz")


def test_the_cli_tells_the_users_os_errors_and_keeps_ours(tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("")
    code = main(["synth", "--out", str(tmp_path / "a-file" / "corpus"), "--subjects", "2", "--tasks", "MW"])
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("eegpt: ")]
    assert code == 2 and len(said) == 1 and "a-file/corpus: Not a directory" in said[0], said
    import eegpt.cli as cli

    def broken(args):  # a path of our own making that is not there: a bug, not the user's
        raise FileNotFoundError(2, "No such file or directory", str(Path(eegpt.__file__).parent / "missing.json"))

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_fn(parser(), broken))
    with pytest.raises(FileNotFoundError):
        main(["cards"])


def _with_fn(parser, fn):
    """The parser, each command calling ``fn``."""
    real = parser.parse_args

    def parse_args(argv=None):
        args = real(argv)
        args.fn = fn
        return args

    parser.parse_args = parse_args
    return parser


def test_pretraining_refuses_up_front_when_no_store_holds_the_held_out_split(stores, tmp_path):
    from eegpt.train import PretrainConfig, pretrain

    mw = stores["mw"]
    all_train = mw.with_splits(np.full(len(mw), "train"))  # as an eegmmidb store: every subject in train
    cfg = PretrainConfig(preset="tiny", steps=3, batch_size=8, seq_tokens=2, warmup=1, eval_batches=1, ckpt_every=3)
    with pytest.raises(TrainingError, match="has windows in split 'val'"):
        pretrain(cfg, [all_train], tmp_path / "a", progress=False, track=False)
    assert not (tmp_path / "a" / "checkpoints").exists()  # refused before any step
    # beside a store that has the split, it trains and scores the held-out MSE on that store alone
    m = pretrain(cfg, [all_train, mw], tmp_path / "b", progress=False, track=False)
    assert m["step"] == 3 and len(m["evaluated_on"]) == 1  # the one store of the two that holds val


def test_new_arguments_are_checked_before_any_work(tmp_path, capsys):
    for argv, says in ((["pretrain", "--data", "s", "--workdir", str(tmp_path / "w"), "--export", "x"], "--export"),
                       (["benchmark", "eegmat", "--source", str(tmp_path), "--workdir", str(tmp_path / "b"),
                         "--train-subjects", "0"], "--train-subjects 0")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "w").exists() and not (tmp_path / "b").exists()  # nothing left behind
