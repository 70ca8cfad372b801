"""The package as a wheel, installed away from the checkout: the cards are package data and the
public API imports (``.ci/run`` also installs the wheel into a fresh virtual environment)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_finds_its_cards_and_api(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("eegpt-*.whl"))
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}  # the installed copy, not the checkout
    code = ("import eegpt, json, pathlib; from eegpt.cli import main; "
            "assert pathlib.Path(eegpt.__file__).parent.parent == pathlib.Path(%r), eegpt.__file__; "
            "[getattr(eegpt, n) for n in ('read', 'prepare', 'pretrain', 'finetune', 'load', 'predict', 'embed', "
            "'Copilot')]; main(['cards', '--json'])" % str(target))
    res = subprocess.run([sys.executable, "-c", code], cwd=away, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    cards = json.loads(res.stdout)
    assert {"eegmat", "eegmmidb", "synthetic-mw"} <= set(cards) and cards["eegmat"]["task"] == "MW"
