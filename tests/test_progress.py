"""Progress on stderr only when it is a terminal (never under make or in a pipe)."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import Build


def many_modules(build: Build, tmp_path: Path, n: int = 30) -> Path:
    d = tmp_path / "mods"
    d.mkdir()
    for i in range(n):
        shutil.copy(build.ko("hello"), d / f"copy{i:02}.ko")
    return d


def test_progress_on_a_terminal_only(build5: Build, tmp_path: Path) -> None:
    mods = many_modules(build5, tmp_path)
    argv = [sys.executable, "-m", "kasalias", "report", "--vmlinux", str(build5.vmlinux), "--modules-dir",
            str(mods), "--json", "-o", str(tmp_path / "r.json")]
    piped = subprocess.run(argv, capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stderr == ""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait() == 0
    assert b"reading modules [30/30]" in seen and b"\r" in seen
