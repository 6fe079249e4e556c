"""make KAS_ALIAS=1 of sample-tree/ through the generated kasalias.mk and kasalias.ninja:
real builds in temporary directories, checked on what make prints, output mtimes and bytes."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE, run_kasalias
from elfread import nm_symbols
from kasalias import buildgen, reprocheck

T0 = time.time()
# The Kbuild-style lines of kasalias steps (other steps: CC, LD, GEN modules.order, ...)
KAS_STEP = re.compile(r"^(KASALIAS .*|GEN kasalias\..*|NM vmlinux\.syms)$")


def make(srctree: Path, objtree: Path, *args: str, kas: bool = True, python: object = sys.executable) -> str:
    """Run make; return what it printed (stdout and stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    cmd = ["make", "--no-print-directory", "-C", str(srctree), f"O={objtree}", *args]
    if kas:
        cmd += ["KAS_ALIAS=1", f"PYTHON3={python}"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}"
    return proc.stdout


def steps(out: str) -> list[str]:
    """The '  TAG     path' lines, with the spaces squeezed: 'KASALIAS hello/hello.ko.aliased'."""
    return [" ".join(line.split()) for line in out.splitlines() if line.startswith("  ")]


def kas_steps(out: str) -> list[str]:
    """The kasalias steps make printed. The generator edge runs again, rightly, when kasalias'
    own files change: a change while the tests run (someone editing kasalias) is left out."""
    found = [s for s in steps(out) if KAS_STEP.match(s)]
    assert len(found) == len(set(found)), f"a step printed twice:\n{out}"
    if "GEN kasalias.ninja" in found and max(p.stat().st_mtime for p in buildgen.dependency_files()) > T0:
        found.remove("GEN kasalias.ninja")
    return found


def module_names(objtree: Path) -> list[str]:
    return [line[:-2] for line in (objtree / "modules.order").read_text().split()]


def group_steps(objtree: Path, module: str) -> list[str]:
    """The lines of the module step that writes ``module``.ko.aliased: one per module of its group."""
    group = next(g for g in buildgen.module_groups([m + ".o" for m in module_names(objtree)]) if module + ".o" in g)
    return [f"KASALIAS {m[:-2]}.ko.aliased" for m in group]


def outputs(objtree: Path) -> dict[str, int]:
    """mtime of every kasalias output, by path relative to objtree."""
    names = ["modules.symbfreq", "modules.symalias", "vmlinux.syms", "vmlinux.syms.aliased", "kasalias.ninja",
             "kasalias.mk"]
    found = {n: (objtree / n).stat().st_mtime_ns for n in names if (objtree / n).exists()}
    for p in objtree.rglob("*.ko.aliased"):
        found[p.relative_to(objtree).as_posix()] = p.stat().st_mtime_ns
    return found


def changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def ninja_dry_run(objtree: Path) -> str:
    return subprocess.run([buildgen.ninja_binary(), "-f", "kasalias.ninja", "-n"], cwd=objtree, check=True,
                          capture_output=True, text=True).stdout


def copy_tree(dst: Path) -> Path:
    shutil.copytree(SAMPLE, dst, ignore=shutil.ignore_patterns("build"))
    return dst


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of sample-tree (not changed by the tests that use it)."""
    return copy_tree(tmp_path_factory.mktemp("src") / "sample-tree")


@pytest.fixture
def own_tree(tmp_path: Path) -> Path:
    """A copy of sample-tree that the test changes."""
    return copy_tree(tmp_path / "sample-tree")


def first_build_steps(objtree: Path) -> list[str]:
    return sorted(["GEN kasalias.mk kasalias.ninja", "NM vmlinux.syms", "KASALIAS modules.symalias",
                   "KASALIAS vmlinux.syms.aliased", *(f"KASALIAS {m}.ko.aliased" for m in module_names(objtree))])


def test_full_build_then_nothing_to_do(tree: Path, tmp_path: Path) -> None:
    obj = tmp_path / "o"
    out = make(tree, obj, "-j2", kas=False)
    assert kas_steps(out) == [] and outputs(obj) == {}, "plain make ran kasalias"
    out = make(tree, obj, "-j2")
    # Only the kasalias steps (the plain build was complete), each once, and no word from ninja
    # (the jobserver notice it prints unless --quiet).
    assert sorted(steps(out)) == first_build_steps(obj), out
    assert "ninja:" not in out, out
    assert set(outputs(obj)) == {"modules.symbfreq", "modules.symalias", "vmlinux.syms", "vmlinux.syms.aliased",
                                 "kasalias.ninja", "kasalias.mk",
                                 *(f"{m}.ko.aliased" for m in module_names(obj))}
    before = outputs(obj)
    out = make(tree, obj, "-j2")
    assert kas_steps(out) == []  # no step ran, and nothing else was printed:
    assert set(out.splitlines()) <= {"  GEN     kasalias.ninja"}
    assert ninja_dry_run(obj) == "ninja: no work to do.\n"
    assert steps(make(tree, obj, "-j2", kas=False)) == []
    assert changed(before, outputs(obj)) == set()


def test_incremental_builds(own_tree: Path, tmp_path: Path) -> None:
    obj = tmp_path / "o"
    make(own_tree, obj, "-j2")

    # One module's source touched: the step of its group runs again (one process), and only that
    # module's output is written: the others come out with the same bytes and keep their time.
    # The analysis runs, finds the same table and leaves it alone (restat).
    before = outputs(obj)
    with (own_tree / "hello" / "hello.c").open("a") as f:
        f.write('MODULE_DESCRIPTION("changed");\n')
    out = make(own_tree, obj, "-j2")
    assert "CC [M] hello/hello.o" in steps(out)
    assert kas_steps(out) == ["KASALIAS modules.symalias", *group_steps(obj, "hello/hello")], out
    assert changed(before, outputs(obj)) == {"hello/hello.ko.aliased"}

    # Touched, not changed: the step runs and writes nothing (the same bytes).
    before = outputs(obj)
    os.utime(own_tree / "hello" / "hello.c")
    out = make(own_tree, obj, "-j2")
    assert kas_steps(out) == ["KASALIAS modules.symalias", *group_steps(obj, "hello/hello")], out
    assert changed(before, outputs(obj)) == set()

    # One .ko.aliased deleted: its group's step runs, and that file alone is written.
    before = outputs(obj)
    (obj / "samples" / "kobject" / "kset-example.ko.aliased").unlink()
    out = make(own_tree, obj, "-j2")
    assert kas_steps(out) == group_steps(obj, "samples/kobject/kset-example"), out
    assert changed(before, outputs(obj)) == {"samples/kobject/kset-example.ko.aliased"}

    # A new function in vmlinux: a new vmlinux and kallsyms list, the same alias table, no module step.
    before = outputs(obj)
    with (own_tree / "lib" / "string.c").open("a") as f:
        f.write("\nint kasalias_test_marker(void)\n{\n\treturn 42;\n}\n")
    out = make(own_tree, obj, "-j2")
    assert {"CC lib/string.o", "LD vmlinux.o", "LD vmlinux"} <= set(steps(out)), out
    assert sorted(kas_steps(out)) == ["KASALIAS modules.symalias", "KASALIAS vmlinux.syms.aliased",
                                      "NM vmlinux.syms"], out
    assert changed(before, outputs(obj)) - {"modules.symbfreq"} == {"vmlinux.syms", "vmlinux.syms.aliased"}
    assert " kasalias_test_marker\n" in (obj / "vmlinux.syms.aliased").read_text()

    # A module added to the list: the generator edge renders the graph again (make's own gen step
    # does not run: its command is the same) and the new module is aliased.
    shutil.copytree(own_tree / "hello", own_tree / "extra")
    (own_tree / "extra" / "hello.c").rename(own_tree / "extra" / "extra.c")
    makefile = own_tree / "Makefile"
    makefile.write_text(makefile.read_text().replace("\thello/hello.o\n", "\thello/hello.o \\\n\textra/extra.o\n"))
    out = make(own_tree, obj, "-j2")
    assert {"GEN kasalias.ninja", "KASALIAS modules.symalias", "KASALIAS extra/extra.ko.aliased"} <= \
        set(steps(out)), out
    assert "GEN kasalias.mk kasalias.ninja" not in steps(out)
    assert " extra/extra.ko.aliased" in (obj / "kasalias.ninja").read_text()
    ko = obj / "extra" / "extra.ko"
    added = {s[2] for s in nm_symbols(ko.with_name("extra.ko.aliased"))} - {s[2] for s in nm_symbols(ko)}
    assert added, "no alias in the new module"
    assert kas_steps(make(own_tree, obj, "-j2")) == []


WRAPPER = """#!/bin/sh
# python3 for make KAS_ALIAS=1 that logs when each kasalias process starts and ends
echo "start $(date +%s%N)" >> {log}
{py} "$@"
rc=$?
echo "end $(date +%s%N)" >> {log}
exit $rc
"""


def wrapper(d: Path) -> tuple[Path, Path]:
    d.mkdir()
    log, py = d / "log", d / "python3"
    py.write_text(WRAPPER.format(py=sys.executable, log=log))
    py.chmod(py.stat().st_mode | stat.S_IXUSR)
    return py, log


def most_at_once(log: Path) -> int:
    events = sorted((int(t), kind == "start") for kind, t in (line.split() for line in log.read_text().splitlines()))
    running = most = 0
    for _, start in events:  # at equal times an end sorts first
        running += 1 if start else -1
        most = max(most, running)
    return most


def test_jobserver_and_verbosity(tree: Path, tmp_path: Path) -> None:
    """ninja takes its job slots from make's jobserver: make -j2 runs two kasalias processes at
    once and never more, -j1 one; a new PYTHON3 makes make render the fragments again."""
    obj = tmp_path / "o"
    make(tree, obj, "-j2")
    for jobs in (2, 1):
        py, log = wrapper(tmp_path / f"py-j{jobs}")
        out = make(tree, obj, f"-j{jobs}", python=py)
        # every command with python in it changed (not nm's)
        assert sorted(kas_steps(out)) == [s for s in first_build_steps(obj) if s != "NM vmlinux.syms"], out
        assert "ninja:" not in out, out
        assert most_at_once(log) == jobs, log.read_text()
    hello = obj / "hello" / "hello.ko.aliased"
    hello.unlink()
    assert make(tree, obj, "-s", "-j2", python=py) == ""
    assert hello.is_file()
    hello.unlink()
    out = make(tree, obj, "V=1", "-j2", python=py)
    assert f"{buildgen.ninja_binary()} -f kasalias.ninja -v\n" in out
    assert f"{py} -m kasalias module --aliases modules.symalias --suffix .aliased " in out, out


def test_make_clean_removes_every_kasalias_output(tree: Path, tmp_path: Path) -> None:
    obj = tmp_path / "o"
    make(tree, obj, "-j2")
    assert (obj / ".kasalias").is_dir() and (obj / ".kasalias.mk.cmd").is_file()
    make(tree, obj, "clean", kas=False)
    assert sorted(p.relative_to(obj).as_posix() for p in obj.rglob("*")) == []


def test_repro_check() -> None:
    """Two builds (-j1, -j2, two directories) give the same outputs; a changed output is reported."""
    proc = run_kasalias("repro-check", "--keep")
    lines = proc.stdout.splitlines()
    kept = Path(lines[-1].removeprefix("kept "))
    try:
        assert "ok       modules.symalias: same bytes" in lines
        assert "ok       vmlinux.syms.aliased: same bytes" in lines
        assert "ok       hello/hello.ko.aliased: same symbol table (the input .ko differ)" in lines
        assert lines[-2] == "9 outputs compared, 0 differ"
        a, b = (kept / rel for rel, _ in reprocheck.BUILDS)
        with (b / "modules.symalias").open("a") as f:
            f.write("# a line only build 2 has\n")
        shutil.copy(b / "hello" / "hello.ko", b / "hello" / "hello.ko.aliased")
        (b / "lib" / "crc7.ko.aliased").unlink()
        findings = {f.path: f for f in reprocheck.compare(a, b)}
        assert "+# a line only build 2 has" in findings["modules.symalias"].how
        assert findings["hello/hello.ko.aliased"].how.startswith("the symbol tables differ")
        assert findings["lib/crc7.ko.aliased"].how == "missing in build 2"
        assert sorted(p for p, f in findings.items() if not f.same) == \
            ["hello/hello.ko.aliased", "lib/crc7.ko.aliased", "modules.symalias"]
    finally:
        shutil.rmtree(kept)


def _kasalias_copy(dst: Path) -> Path:
    """A copy of this kasalias (package, templates, Kbuild fragment) to change, and a Python
    that runs it (the same path before and after the change, as an upgrade in place)."""
    for d in ("kasalias", "templates", "kbuild"):
        shutil.copytree(ROOT / d, dst / d, ignore=shutil.ignore_patterns("__pycache__"))
    python = dst / "python3"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={dst} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return python


def test_another_kasalias_remakes_every_output_once(tree: Path, tmp_path: Path) -> None:
    """Outputs depend on the kasalias that made them: after a change to kasalias' code every
    kasalias step runs again, the outputs equal a clean build's with the changed kasalias,
    and the next build does nothing."""
    kas = tmp_path / "kas"
    python = _kasalias_copy(kas)
    obj = tmp_path / "o"
    make(tree, obj, "-j2", python=python)
    naming = kas / "kasalias" / "naming.py"
    naming.write_text(naming.read_text() + "\n# another kasalias\n")
    out = make(tree, obj, "-j2", python=python)
    ran = sorted(s for s in steps(out) if KAS_STEP.match(s))
    # every kasalias step (nm is not kasalias), and ninja's generator edge, which saw the file change
    assert ran == sorted({*first_build_steps(obj), "GEN kasalias.ninja"} - {"NM vmlinux.syms"}), out
    again = make(tree, obj, "-j2", python=python)
    assert [s for s in steps(again) if KAS_STEP.match(s)] == [], again
    upgraded = {name: (obj / name).read_bytes() for name in outputs(obj)}
    shutil.rmtree(obj)  # a clean build in the same directory (DWARF holds its absolute path)
    make(tree, obj, "-j2", python=python)
    assert {name: (obj / name).read_bytes() for name in outputs(obj)} == upgraded
