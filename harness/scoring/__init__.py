"""Scoring: the G.107 E-model, small statistics, and per-cell verdicts."""

from harness.scoring.emodel import (
    CODECS,
    Codec,
    EModelParams,
    Impairments,
    burst_r_from_markov,
    get_codec,
    impairments,
    mos_from_r,
    r_factor,
    score_call,
)
from harness.scoring.stats import median, percentile, wilson_interval
from harness.scoring.verdict import CellScore, Thresholds, score_cell, score_cells

__all__ = [
    "CODECS",
    "CellScore",
    "Codec",
    "EModelParams",
    "Impairments",
    "Thresholds",
    "burst_r_from_markov",
    "get_codec",
    "impairments",
    "median",
    "mos_from_r",
    "percentile",
    "r_factor",
    "score_call",
    "score_cell",
    "score_cells",
    "wilson_interval",
]
