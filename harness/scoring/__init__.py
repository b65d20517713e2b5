"""Scoring: the G.107 E-model (`emodel`), small statistics (`stats`) and per-cell verdicts
(`verdict`). Import the submodules: the agents use `stats` and must not pay for pydantic."""
