"""Commands that orchestrate a workspace with the side roads (tune, evaluate); CLI and HTTP call these."""

from ragtune.jobs.beir import beir_workspace, evaluate_beir
from ragtune.jobs.compare import advise, compare
from ragtune.jobs.freshness import probe_freshness
from ragtune.jobs.tune import export, synth, tune_fusion, tune_generator, tune_raft, tune_retriever, tune_tone

__all__ = [
    "advise",
    "beir_workspace",
    "compare",
    "evaluate_beir",
    "export",
    "probe_freshness",
    "synth",
    "tune_fusion",
    "tune_generator",
    "tune_raft",
    "tune_retriever",
    "tune_tone",
]
