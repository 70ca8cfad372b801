"""The README and the documentation hold: a short README whose results table is the committed result
file's, and a results page that renders every committed result file with its provenance."""
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PEER_NAMES = {"band power": "band_power", "CSP + LDA": "csp_lda", "ERP": "erp"}


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_the_readme_results_table_is_the_committed_result_file():
    """Each row of the README's table, read as text, equals the figures in the JSON the demo wrote."""
    summary = json.loads((RESULTS / "demo-quick-seeds.json").read_text())
    readme = (ROOT / "README.md").read_text()
    assert summary["command"] in readme.replace("\n", " ")
    rows = re.findall(r"^\| [^|]*\((\w\w)\) \| ([0-9.]+) ± ([0-9.]+) \| (.+?) ([0-9.]+) \| ([−+][0-9.]+) \| (.*?) \|$",
                      readme, re.M)
    assert [r[0] for r in rows] == ["ER", "MI", "MW", "SS", "CM"]
    for task, mean, std, peer, peer_mean, gap, kept in rows:
        r = summary["tasks"][task]
        assert float(mean) == round(r["model"]["mean"], 3) and float(std) == round(r["model"]["std"], 3)
        assert PEER_NAMES[peer] == r["best_peer"]
        assert float(peer_mean) == round(r["peers"][r["best_peer"]]["mean"], 3)
        assert float(gap.replace("−", "-")) == round(r["gap"], 3)
        # "kept, on every seed": the README may say it only if every seed kept that
        if "step 0 (linear start)" in kept:
            assert all(k["step"] == 0 and k["what"] == "linear start" for k in r["kept"])
        if "ETE not read" in kept:
            assert not any(k["ete_read"] for k in r["kept"])
    mean = re.search(r"^\| mean \| ([0-9.]+) \| ([0-9.]+) \|", readme, re.M)
    assert float(mean.group(1)) == round(summary["mean"], 3)
    assert float(mean.group(2)) == round(summary["best_peers_mean"], 3)


def test_every_result_file_is_described_and_rendered():
    manifest = tomllib.loads((RESULTS / "manifest.toml").read_text())
    page = (ROOT / "docs" / "results.rst").read_text()
    files = sorted(p.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("*.json"))
    assert files
    for name in files:
        assert name in manifest, f"{name} has no entry in docs/results/manifest.toml"
        assert {"kind", "title", "command", "seeds", "commit", "machine"} <= set(manifest[name]), name
        assert re.fullmatch(r"[0-9a-f]{7,40}", manifest[name]["commit"]), name
        assert f".. eegpt-results:: {name}" in page, f"docs/results.rst does not render {name}"
