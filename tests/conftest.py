import os
from pathlib import Path

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
