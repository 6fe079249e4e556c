"""kasalias' modules: no module imports itself through others, the module step (one process
per group of modules of a build) imports what it needs, not the analysis or the template
engine, and the README's Layout names each of them."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Build

PACKAGE = ROOT / "kasalias"

# What the module step imports of kasalias, and what it must not import: it runs once per
# group of modules (buildgen.module_groups), so its start-up is paid some 130 times on a
# distribution kernel; the analysis, the DWARF reader and the template engine are for other
# commands (a module built out of tree imports the analysis when it gets there).
# (The command line's parser names probe's tools and the known series: probe, index, series.)
STEP_KASALIAS = {"kasalias", "kasalias.aliastable", "kasalias.btf", "kasalias.buildid", "kasalias.cli",
                 "kasalias.elfwrite", "kasalias.errors", "kasalias.fentry", "kasalias.fsutil", "kasalias.loader_rules", "kasalias.index", "kasalias.modwriter", "kasalias.probe",
                 "kasalias.resources", "kasalias.series", "kasalias.symbols"}
STEP_NEVER = ("elftools", "http", "jinja2", "kasalias.analysis", "kasalias.dwarfscan", "kasalias.srcloc", "urllib.request")

# Runs the step as the build does (python -m kasalias) and reports, as the interpreter leaves,
# the modules imported since it started.
_PROBE = """\
import atexit, runpy, sys
before = set(sys.modules)
atexit.register(lambda: sys.stderr.write("IMPORTED " + " ".join(sorted(set(sys.modules) - before)) + "\\n"))
sys.argv[0] = "kasalias"
runpy.run_module("kasalias", run_name="__main__")
"""


def imported_by(code: str, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("IMPORTED ")]
    assert len(lines) == 1, proc.stderr
    return set(lines[0].split()[1:]), proc


def test_module_step_imports(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    out = tmp_path / "minix.ko.aliased"
    step, proc = imported_by(_PROBE, "module", "--aliases", str(analysis5 / "modules.symalias"),
                             str(build5.ko("minix")), str(out))
    assert proc.returncode == 0 and out.is_file(), proc.stderr
    assert {m for m in step if m.split(".")[0] == "kasalias"} == STEP_KASALIAS
    assert not [m for m in step for never in STEP_NEVER if m == never or m.startswith(never + ".")]


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
