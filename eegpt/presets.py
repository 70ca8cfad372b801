"""Model presets: EEGPT's four sizes (Table 1) and a tiny one for tests.

| preset | ETE layers | graph layers | hidden | heads | EEGPT's params (ETE+TEG) |
"""

from __future__ import annotations

import jax
from flax import nnx

from ete import ETE, ETEConfig
from teg import TEG, TEGConfig

PUBLISHED = {"base": 1.46e6, "large": 11.29e6, "huge": 183.8e6, "giant": 1.09e9}

PRESETS: dict[str, tuple[ETEConfig, TEGConfig]] = {
    "tiny": (ETEConfig(d_model=32, layers=2, heads=2, token_len=64), TEGConfig(d_model=32, layers=1, heads=2)),
    "base": (ETEConfig(d_model=128, layers=3, heads=4), TEGConfig(d_model=128, layers=3, heads=4, ffn_mult=3.0)),
    "large": (ETEConfig(d_model=256, layers=9, heads=8), TEGConfig(d_model=256, layers=3, heads=8)),
    "huge": (ETEConfig(d_model=896, layers=12, heads=14), TEGConfig(d_model=896, layers=4, heads=14)),
    "giant": (ETEConfig(d_model=1792, layers=20, heads=28), TEGConfig(d_model=1792, layers=4, heads=28)),
}


def preset(name: str) -> tuple[ETEConfig, TEGConfig]:
    """The (ETE, TEG) configs of a named preset; an unknown name is refused."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def _count(make) -> int:
    """Parameters of a module, from shapes only (``nnx.eval_shape``: nothing is allocated)."""
    abstract = nnx.eval_shape(make)
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))))


def ete_param_count(cfg: ETEConfig) -> int:
    """The ETE's parameter count for ``cfg``, from shapes alone (nothing allocated)."""
    return _count(lambda: ETE(cfg, rngs=nnx.Rngs(0)))


def teg_param_count(cfg: TEGConfig) -> int:
    """The TEG's parameter count for ``cfg``, from shapes alone (nothing allocated)."""
    return _count(lambda: TEG(cfg, rngs=nnx.Rngs(0)))


def counts(name: str) -> dict:
    """A preset's ETE, TEG and total parameter counts and sizes, beside EEGPT's published total."""
    ete_cfg, teg_cfg = preset(name)
    ete_n, teg_n = ete_param_count(ete_cfg), teg_param_count(teg_cfg)
    out = {"params": ete_n + teg_n, "ete_params": ete_n, "teg_params": teg_n,
           "d_model": ete_cfg.d_model, "ete_layers": ete_cfg.layers, "graph_layers": teg_cfg.layers,
           "heads": ete_cfg.heads}
    if name in PUBLISHED:
        out["published"] = PUBLISHED[name]
        out["relative_difference"] = (out["params"] - PUBLISHED[name]) / PUBLISHED[name]
    return out


def print_presets(table: dict) -> None:
    """The ``eegpt presets`` table."""
    print(f"{'preset':<7} {'ETE layers':>10} {'graph':>6} {'hidden':>7} {'heads':>6} {'ETE':>14} {'TEG':>13} "
          f"{'total':>14} {'EEGPT':>9}")
    for name, c in table.items():
        pub = f"{c['published'] / 1e6:.2f}M ({c['relative_difference']:+.1%})" if "published" in c else ""
        print(f"{name:<7} {c['ete_layers']:>10} {c['graph_layers']:>6} {c['d_model']:>7} {c['heads']:>6} "
              f"{c['ete_params']:>14,} {c['teg_params']:>13,} {c['params']:>14,} {pub:>9}")
