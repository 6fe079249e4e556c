"""Acceptance checks on Debian's real debug kernel (tools/check-debian-dbg with a small --limit).

Fetches the package once with tools/fetch-debian-dbg into
${KASALIAS_CACHE:-/var/cache/kasalias}/dbg/ (about 320 MB from Debian's registry).
Run alone with: .venv/bin/python -m pytest -m realkernel
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "tools" / "check-debian-dbg"
CACHE = Path(os.environ.get("KASALIAS_CACHE") or "/var/cache/kasalias")
LIMIT = 40
CHECKS = ("a", "b1", "b2", "b3", "b4", "b5", "c1", "c2", "c3")

pytestmark = pytest.mark.realkernel


def _cached_kernel() -> tuple[Path, Path] | None:
    """(vmlinux, modules dir) of the newest unpacked 6.12 debug package in the cache, if any."""
    found = []
    for pkg in sorted((CACHE / "dbg").glob("linux-image-6.12*-dbg_*")):
        vmlinuxes = sorted((pkg / "usr/lib/debug/boot").glob("vmlinux-*"))
        mods = [d for d in sorted((pkg / "usr/lib/debug/lib/modules").glob("*")) if (d / "modules.order").is_file()]
        if vmlinuxes and mods:
            found.append((vmlinuxes[0], mods[0]))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def check_run() -> subprocess.CompletedProcess[str]:
    kernel = _cached_kernel()
    if kernel is None:
        subprocess.run([str(ROOT / "tools" / "fetch-debian-dbg")], check=True, capture_output=True)
        kernel = _cached_kernel()
    assert kernel is not None, f"tools/fetch-debian-dbg left no 6.12 debug kernel in {CACHE}/dbg"
    vmlinux, modules = kernel
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
