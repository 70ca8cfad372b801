"""``.. eegpt-results:: FILE``: a results table generated from a result JSON under ``docs/results/``.

Each table has one source, the JSON a command wrote; ``docs/results/manifest.toml`` says, per file,
its kind (which table it makes), the command that wrote it, the seeds, the commit and the
machine, and the directive prints them
above the table. A file the manifest does not describe is a build error.
"""
import json
import tomllib
from pathlib import Path

from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

from eegpt import TASKS

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _f(x) -> str:
    return f"{x:.3f}"


def _ms(d: dict) -> str:
    return f"{d['mean']:.3f} ± {d['std']:.3f}"


def demo_seeds(d: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of a ``eegpt demo --seeds`` summary: EEGPT, the best peer, the gap and what was kept."""
    rows = []
    for t in TASKS:
        r = d["tasks"][t]
        kept = sorted({k["text"] for k in r["kept"]})
        rows.append([t, _ms(r["model"]), f"{r['best_peer']} {_ms(r['peers'][r['best_peer']])}",
                     f"{r['gap']:+.3f}", "; ".join(kept)])
    rows.append(["mean", _f(d["mean"]), _f(d["best_peers_mean"]), f"{d['mean'] - d['best_peers_mean']:+.3f}", ""])
    return ["task", "EEGPT", "best peer", "gap", "kept (per seed)"], rows


def demo_report(d: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of one demo's ``report.json``: EEGPT beside its best peer, per task, and what was kept."""
    rows = [[t, _f(r["balanced_accuracy"]), f"{r['best_baseline']} {_f(r['baseline_balanced_accuracy'])}",
             _f(r["chance"]), r["kept"]["text"]] for t, r in d["tasks"].items()]
    return ["task", "EEGPT", "best peer", "chance", "kept"], rows


def ablation(d: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of an ablation: per arm, the validation mean it was chosen on and the test scores."""
    rows = []
    for arm, r in d["arms"].items():
        mark = " (chosen)" if arm == d["chosen"]["arm"] else ""
        rows.append([arm + mark, _f(r["val_mean_over_tasks"])] + [_ms(r["tasks"][t]) for t in TASKS]
                    + [_f(r["mean_over_tasks"])])
    return ["arm", "validation mean (the choice)"] + [f"{t} test" for t in TASKS] + ["test mean"], rows


def copilot_eval(d: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of ``experiments/copilot_eval.py``: the guarded answer, the decoder alone, the template."""
    rows = []
    for name, key in (("answer (guarded)", "answer"), ("decoder alone", "decoder_alone"),
                      ("templated reference", "templated_baseline")):
        r = d[key]
        rows.append([name, _f(r["label_faithfulness"]), str(r["contradictions"]), _f(r["uncertain_flagged"]),
                     f"{r['bleu']:.1f}", _f(r["rougeL_f1"]), f"{r['fallback_rate']:.3f}" if "fallback_rate" in r else ""])
    return ["answer", "label faithfulness", "contradictions", "uncertain flagged", "BLEU", "ROUGE-L F1",
            "fallback"], rows


def probe(d: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of ``eegpt probe``: per store, each feature set's cross-validated balanced accuracy."""
    sets = ("ete", "ete_mean", "band_power", "ete+band_power")
    rows = [[name, r["task"], str(r["windows"]), str(r["subjects"])] + [_ms(r[k]) for k in sets] + [_f(r["chance"])]
            for name, r in d.items()]
    return ["store", "task", "windows", "subjects", "ETE", "ETE mean", "band power", "ETE + band power", "chance"], rows


def label_efficiency(d: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of ``experiments/label_efficiency.py``: per arm, the scored subjects' balanced accuracy
    at each number of labelled training subjects."""
    dev = d.get("development", {})
    rows = [[arm] + [_ms(by_k[k]) for k in d["ks"]] + [_ms(dev[arm]) if arm in dev else "—"]
            for arm, by_k in d["arms"].items()]
    return (["reader"] + [f"K = {k}" for k in d["ks"]]
            + ["training subjects alone (grouped 5-fold CV; what a choice may read)"], rows)


def benchmark(d: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of ``eegpt benchmark``'s ``results.json``: EEGPT (with what it kept) and every peer."""
    kept = sorted({k["text"] for k in d["kept"].values() if k})
    rows = []
    for model, r in d["summary"].items():
        rows.append([model, _ms(r["balanced_accuracy"]), _ms(r["cohen_kappa"]),
                     _ms(r["auroc"]) if "auroc" in r else "", _ms(r["ece"]) if "ece" in r else "",
                     "; ".join(kept) if model == "EEGPT" else ""])
    return ["model", "balanced accuracy", "kappa", "AUROC", "ECE", "kept (every seed)"], rows


def view_probe(d: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of ``experiments/timelocked_probe.py``: per view, its cross-validated balanced accuracy."""
    rows = [[name, str(r["columns"]), _ms(r)] for name, r in d["views"].items()]
    return ["view", "columns", "balanced accuracy"], rows


def tokenizer(d: dict) -> tuple[list[str], list[list[str]]]:
    """The held-out report of ``eegpt tokenizer``: reconstruction beside a code carrying nothing, code use."""
    rows = [["time (MSE)", f"{d['time_mse']:.5f}", f"{d['time_zero_mse']:.5f} (zero)"],
            ["amplitude spectrum (MSE)", f"{d['amplitude_mse']:.5f}",
             f"{d['amplitude_mean_mse']:.5f} (training tokens' mean spectrum)"],
            ["codebook perplexity", f"{d['perplexity']:.1f}", f"{d['codes']} (every code alike)"],
            ["live codes", str(d["live_codes"]), str(d["codes"])]]
    return ["held-out tokens", "tokenizer", "reference"], rows


def pretraining(d: dict) -> tuple[list[str], list[list[str]]]:
    """The held-out report of ``eegpt pretrain`` (next-token MSE, or with ``--tokens`` next-code prediction)."""
    if "val_ce" in d:
        rows = [["next-code cross-entropy (nats)", f"{d['val_ce']:.3f}", f"{d['unigram_ce']:.3f} (training codes' frequencies)"],
                ["next-code accuracy", f"{d['val_accuracy']:.3f}", f"{d['repeat_accuracy']:.3f} (the previous token's code)"]]
    else:
        rows = [["next-token MSE", f"{d['val_mse']:.5f}", f"{d['zero_mse']:.5f} (zero), {d['persistence_mse']:.5f} "
                 f"(persistence), {d.get('linear_ar_mse', float('nan')):.5f} (linear AR)"]]
    return ["held-out tokens", "ETE", "reference"], rows


def eeg_only(d: dict) -> tuple[list[str], list[list[str]]]:
    """``experiments/eeg_only_eval.py --json``: per head, the EEG-only decoder's stated class beside the head."""
    rows = [[name, r["task"], str(r["windows"]), _f(r["head"]), _f(r["eeg_only"]), f"{r['gap']:+.3f}",
             _f(r["linear_reading"]), f"{r['answers_faithful']}/{r['answers_checked']}"] for name, r in d["rows"].items()]
    return ["head", "task", "scored windows", "head", "EEG-only decoder", "gap", "its linear probe alone (a logistic regression on the same tokens)",
            "answers faithful"], rows


KINDS = {"eeg-only": eeg_only, "benchmark": benchmark, "label-efficiency": label_efficiency, "probe": probe, "demo-seeds": demo_seeds,
         "demo-report": demo_report, "ablation": ablation, "copilot-eval": copilot_eval, "view-probe": view_probe,
         "tokenizer": tokenizer, "pretraining": pretraining}


def list_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header] + rows:
        out.append("   * - " + (row[0] or " "))
        out.extend("     - " + (cell or " ") for cell in row[1:])
    return out


class ResultsTable(SphinxDirective):
    """The table of one result JSON, its provenance above it."""

    required_arguments = 1
    option_spec = {"title": directives.unchanged}

    def run(self):
        name = self.arguments[0]
        path = RESULTS / name
        self.env.note_dependency(str(path))
        self.env.note_dependency(str(RESULTS / "manifest.toml"))
        manifest = tomllib.loads((RESULTS / "manifest.toml").read_text())
        if name not in manifest:
            raise self.error(f"docs/results/manifest.toml does not describe {name}")
        about = manifest[name]
        data = json.loads(path.read_text())
        if about.get("kind") not in KINDS:
            raise self.error(f"docs/results/manifest.toml: {name} needs kind = one of {', '.join(KINDS)}")
        header, rows = KINDS[about["kind"]](data)
        lines = [f"**{about['title']}**", "",
                 f"Command: ``{about['command']}``; seeds: {about['seeds']}; commit ``{about['commit']}``; "
                 f"machine: {about['machine']}. Source: ``docs/results/{name}``.", ""]
        lines += list_table(header, rows)
        if about.get("note"):
            lines += ["", about["note"]]
        node_list = self.parse_text_to_nodes("\n".join(lines))
        return node_list


def setup(app):
    app.add_directive("eegpt-results", ResultsTable)
    return {"parallel_read_safe": True, "version": "1"}
