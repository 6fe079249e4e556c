"""Acceptance checks on Debian's real debug kernel (tools/check-debian-dbg with a small --limit).

Fetches the package once with tools/fetch-debian-dbg into
${KASALIAS_CACHE:-/var/cache/kasalias}/dbg/ (about 320 MB from Debian's registry).
Run alone with: .venv/bin/python -m pytest -m realkernel
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "tools" / "check-debian-dbg"
LIMIT = 40
CHECKS = ("a", "b1", "b2", "b3", "b4", "b5", "c1", "c2", "c3")

pytestmark = pytest.mark.realkernel


def _kernel() -> tuple[Path, Path]:
    """(vmlinux, modules dir) of the package tools/fetch-debian-dbg gives by default (Debian's
    6.12 cloud-amd64 debug kernel), fetched on first use, taken from the cache after."""
    out = subprocess.run([str(ROOT / "tools" / "fetch-debian-dbg")], check=True, capture_output=True,
                         text=True).stdout
    vals = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return Path(vals["vmlinux"]), Path(vals["modules"])


@pytest.fixture(scope="module")
def check_run() -> subprocess.CompletedProcess[str]:
    vmlinux, modules = _kernel()
    return subprocess.run([sys.executable, str(CHECK), "--vmlinux", str(vmlinux), "--modules-dir", str(modules),
                           "--limit", str(LIMIT)], capture_output=True, text=True, timeout=1800)


def test_check_exits_zero(check_run: subprocess.CompletedProcess[str]) -> None:
    if check_run.returncode != 0:
        pytest.fail(f"tools/check-debian-dbg --limit {LIMIT}: exit {check_run.returncode}\n"
                    f"{check_run.stdout}{check_run.stderr}", pytrace=False)


@pytest.mark.parametrize("tag", CHECKS)
def test_check_passes(check_run: subprocess.CompletedProcess[str], tag: str) -> None:
    lines = [line for line in check_run.stdout.splitlines() if re.match(rf"(PASS|FAIL) \({re.escape(tag)}\) ", line)]
    assert lines, f"no result line for check ({tag}):\n{check_run.stdout}{check_run.stderr}"
    # a FAIL line is followed by its details: show them
    out = check_run.stdout
    start = out.find(lines[0])
    if not lines[0].startswith("PASS"):
        pytest.fail(out[start:start + 4000], pytrace=False)


def test_no_traceback(check_run: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback (most recent call last)" not in check_run.stdout + check_run.stderr
