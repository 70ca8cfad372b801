import os
import struct
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not SHARED.exists() and os.environ.get("EEGPT_SHARED_DATA"):
    SHARED = Path(os.environ["EEGPT_SHARED_DATA"])


def shared(*parts) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (../shared/data beside the checkout)")
    return path


def on_eight_devices(script: str) -> dict:
    """Run ``script`` in a fresh Python with 8 simulated CPU devices; the JSON of its last line."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def write_neuroscan_cnt(path: Path, names, x_uv, sfreq: float, bytes_per_sample: int = 4,
                        header_samples: int | None = None) -> None:
    """A Neuroscan .cnt as Scan writes it: the 900-byte SETUP header (channels at 370, rate at 376,
    samples at 864, event-table offset at 886), one 75-byte ELECTLOC per channel (name, baseline at
    47, sensitivity at 59, calibration at 71), int32 or int16 samples interleaved by channel, then an
    empty event table. ``header_samples`` overrides the header's sample count (Scan leaves some 0)."""
    n_ch, n = x_uv.shape
    head = bytearray(900)
    head[0:11] = b"Version 3.0"
    head[225:233], head[235:243] = b"08/04/18", b"10:00:00"
    struct.pack_into("<H", head, 370, n_ch)
    struct.pack_into("<H", head, 376, int(sfreq))
    struct.pack_into("<i", head, 864, n if header_samples is None else header_samples)
    struct.pack_into("<i", head, 886, 900 + 75 * n_ch + bytes_per_sample * n_ch * n)
    struct.pack_into("<fi", head, 890, n / sfreq, bytes_per_sample)
    electlocs = bytearray(75 * n_ch)
    for k, name in enumerate(names):
        electlocs[75 * k:75 * k + len(name)] = name.encode()
        struct.pack_into("<ff", electlocs, 75 * k + 19, np.cos(k), np.sin(k))  # a position on the layout
        struct.pack_into("<f", electlocs, 75 * k + 59, 204.8)  # sensitivity x calibration / 204.8 = 0.01 uV a count
        struct.pack_into("<f", electlocs, 75 * k + 71, 0.01)
    counts = np.round(x_uv / 0.01).astype("<i4" if bytes_per_sample == 4 else "<i2").T.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(head) + bytes(electlocs) + counts + struct.pack("<Bll", 1, 0, 0))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small synthetic corpus: 3 subjects x 5 tasks (written once per test session)."""
    from eegpt.synth import write_corpus

    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out, subjects=3, seed=7)
    return out


@pytest.fixture(scope="session")
def stores(corpus, tmp_path_factory):
    """Prepared stores of the small corpus, one per task (key: lower-case task)."""
    from eegpt.store import prepare

    root = tmp_path_factory.mktemp("stores")
    return {t: prepare(f"synthetic-{t}", corpus, root / t, workers=1, progress=False)
            for t in ("er", "mi", "mw", "ss", "cm")}
