import json

import numpy as np

from eegpt.finetune import FinetuneConfig, extract, finetune, load_ete, standardize
from eegpt.train import PretrainConfig, pretrain


def test_finetune_mechanics_on_a_frozen_tiny_ete(stores, tmp_path):
    parts = [stores["mw"], stores["cm"]]
    pretrain(PretrainConfig(preset="tiny", steps=4, batch_size=16, seq_tokens=2, warmup=1, eval_batches=1),
             [stores["mw"]], tmp_path / "ete", progress=False, track=False)
    graphdef, params, cfg = load_ete(tmp_path / "ete")
    cached = extract(graphdef, params, cfg, stores["mw"])
    assert cached["features"].shape == (len(stores["mw"]), 19, 32) and cached["mask"].all()
    norm = standardize(cached)
    train = norm["splits"] == "train"
    np.testing.assert_allclose(norm["features"][train].mean(0), 0, atol=1e-4)
    out = finetune(tmp_path / "ete", parts, tmp_path / "ft", FinetuneConfig(steps=4, eval_every=2, batch_size=8),
                   progress=False)
    saved = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert saved["steps_run"] == 4 and len(saved["history"]) == 2
    assert set(saved["history"][-1]["val_balanced_accuracy"]) == {"synthetic-mw", "synthetic-cm"}
    assert 0.0 <= out["best_val_mean"] <= 1.0
    assert (tmp_path / "ft" / "checkpoints").exists()
