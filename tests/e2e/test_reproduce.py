"""Every `gatecrash reproduce` case in quick mode, on real traffic through the real censor:
each row agrees with its published figure, except rows the case declares a finding (a
published behaviour the shipped censor is known not to reproduce; the case's note says why),
which must still not agree, so a fix shows up here."""

from __future__ import annotations

import pytest

from harness.reproduce import CASES
from harness.reproduce.core import render
from harness.reproduce.runner import run_case

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", list(CASES))
def test_case_rows_agree_in_quick_mode(name: str, tmp_path) -> None:
    report = run_case(name, quick=True, workdir=tmp_path)
    table = render([report])
    print(table)
    assert report.error is None, table
    assert report.rows, table
    for row in report.rows:
        if row.finding:
            assert not row.agrees, f"a declared finding now agrees: update the case\n{table}"
        else:
            assert row.agrees, f"{row.quantity} does not agree\n{table}"
