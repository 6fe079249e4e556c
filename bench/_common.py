"""Shared helpers of the bench/ scripts and tools/check-debian-dbg (stdlib only).

Not a module of the package: the scripts put this directory on sys.path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def ensure_venv() -> None:
    """Re-execute the calling script with the project's venv Python if kasalias cannot be imported."""
    try:
        import elftools  # noqa: F401
        import kasalias  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve() \
                and not os.environ.get("KASALIAS_BENCH_REEXEC"):
            os.environ["KASALIAS_BENCH_REEXEC"] = "1"
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))


def kasalias_cmd() -> list[str]:
    """How to start the kasalias command line (the same Python as this script)."""
    return [sys.executable, "-m", "kasalias"]


def fetch_debian_dbg() -> tuple[Path, Path]:
    """(vmlinux, modules dir) from tools/fetch-debian-dbg (which may download on first use)."""
    out = subprocess.run([str(ROOT / "tools" / "fetch-debian-dbg")], check=True, capture_output=True,
                         text=True).stdout
    vals = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return Path(vals["vmlinux"]), Path(vals["modules"])


def kernel_series(vmlinux: Path) -> str:
    """The series of a Debian debug vmlinux, for --kernel-version: vmlinux-6.1.0-57-amd64 -> 6.1."""
    m = re.search(r"vmlinux-(\d+\.\d+)", vmlinux.name)
    return m.group(1) if m else "6.12"


@dataclass
class Run:
    """One finished child process: wall seconds, CPU seconds (user+sys, its children included),
    peak RSS in MiB (the largest of it and its waited-for children), exit code."""

    argv: Sequence[str]
    wall: float
    user: float
    sys: float
    maxrss_mib: float
    returncode: int
    stderr: str = ""

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def run_measured(argv: Sequence[str], *, stdin: IO[bytes] | int | None = subprocess.DEVNULL,
                 stdout: IO[bytes] | int | None = subprocess.DEVNULL, cwd: Path | None = None,
                 check: bool = True, env: dict[str, str] | None = None) -> Run:
    """Run argv to completion and measure it with wait4() (per child, thread-safe).

    stderr is collected into a temporary file (never a pipe: no deadlock, no thread).
    """
    import tempfile

    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=err, cwd=cwd, env=env)
        _pid, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    r = Run(list(argv), wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss / 1024.0, proc.returncode, text)
    if check and r.returncode != 0:
        sys.stderr.write(f"FAILED (exit {r.returncode}): {' '.join(map(str, argv))}\n{text}\n")
        raise SystemExit(1)
    return r


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt_s(x: float) -> str:
    return f"{x:.2f}"


def baseline_checkout(commit: str, parent: Path) -> tuple[Path, dict[str, str]]:
    """kasalias of ``commit`` (a detached git worktree under ``parent``), and the environment
    that makes ``python -m kasalias`` run it (PYTHONPATH comes before the editable install)."""
    wt = parent / f"baseline-{commit}"
    if not wt.is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), commit], check=True,
                       capture_output=True)
    return wt, dict(os.environ, PYTHONPATH=str(wt))


def remove_baseline(wt: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], capture_output=True)
