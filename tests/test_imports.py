"""kasalias' modules: no module imports itself through others, the per-module step (one
process per module of a build) imports no more than it does (NOTES.md, "Start-up of the
per-module step"), and the README's Layout names each of them."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Build

PACKAGE = ROOT / "kasalias"

# What the step imports, measured before the series registry (issue 19) on Python 3.11: the
# modules below, and the standard library's that importing STEP_STDLIB brings (on 3.11:
# __future__ _bisect _collections _functools _operator _struct bisect collections enum functools
# itertools keyword mmap operator reprlib signal struct types).
STEP_KASALIAS = {"kasalias", "kasalias.aliastable", "kasalias.cli", "kasalias.errors", "kasalias.fsutil",
                 "kasalias.modwriter", "kasalias.symbols"}
STEP_STDLIB = ("__future__", "bisect", "mmap", "operator", "signal", "struct")
STEP_STDLIB_3_11 = {"__future__", "_bisect", "_collections", "_functools", "_operator", "_struct", "bisect",
                    "collections", "enum", "functools", "itertools", "keyword", "mmap", "operator", "reprlib",
                    "signal", "struct", "types"}

# Runs the step as the build does (python -c LAUNCHER) and reports, as it leaves through
# os._exit, the modules imported since the interpreter started the command.
_PROBE = """\
import os, sys
before = set(sys.modules)
real_exit = os._exit
def report(status):
    sys.stderr.write("IMPORTED " + " ".join(sorted(set(sys.modules) - before)) + "\\n")
    sys.stderr.flush()
    real_exit(status)
os._exit = report
"""


def imported_by(code: str, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("IMPORTED ")]
    assert len(lines) == 1, proc.stderr
    return set(lines[0].split()[1:]), proc


def test_module_step_imports_what_it_did(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    from kasalias.buildgen import LAUNCHER

    out = tmp_path / "minix.ko.aliased"
    step, proc = imported_by(_PROBE + LAUNCHER, "module", "--aliases", str(analysis5 / "modules.symalias"),
                             str(build5.ko("minix")), str(out))
    assert proc.returncode == 0 and out.is_file(), proc.stderr
    assert {m for m in step if m.split(".")[0] == "kasalias"} == STEP_KASALIAS
    # the standard library's part, as this Python's modules import each other
    stdlib, _ = imported_by(_PROBE + f"import {', '.join(STEP_STDLIB)}\nos._exit(0)")
    assert {m for m in step if m.split(".")[0] != "kasalias"} == stdlib
    if sys.version_info[:2] == (3, 11):
        assert stdlib == STEP_STDLIB_3_11


def kasalias_imports(path: Path) -> set[str]:
    """The kasalias modules ``path`` imports anywhere: at module level, in functions and in
    TYPE_CHECKING blocks (a cycle through any of them is a cycle when both run)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from kasalias import buildid" imports kasalias.buildid
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "kasalias"
                                     else [])
        found.update(n for n in names if n.startswith("kasalias.") and (PACKAGE / f"{n.split('.')[1]}.py").is_file())
    found = {".".join(n.split(".")[:2]) for n in found}
    found.discard(f"kasalias.{path.stem}")
    return found


def test_import_graph_has_no_cycle() -> None:
    graph = {f"kasalias.{p.stem}": kasalias_imports(p) for p in sorted(PACKAGE.glob("*.py"))}
    assert graph["kasalias.kbuild"] >= {"kasalias.series"}  # the graph is read at all
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, path + [module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_readme_layout_names_every_module() -> None:
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):].split("\n\n")[1]
    named = set(re.findall(r"`(\w+)`", layout))
    assert {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"} <= named
