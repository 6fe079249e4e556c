"""kasalias gen: the rendered ninja file and Make fragment (golden files), ninja quoting run
by a real ninja, refusals (a newline, two producers of one output), writing only on change.

KASALIAS_UPDATE_GOLDEN=1 rewrites tests/golden/ from the current templates."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Build, run_kasalias
from elfread import nm_symbols
from kasalias import buildgen, buildid
from kasalias.buildgen import Edge, GenConfig, Graph, Rule, module_groups, ninja_escape
from kasalias.cli import main
from kasalias.errors import KasaliasError

GOLDEN = Path(__file__).resolve().parent / "golden"
SRCTREE = "/usr/src/linux-6.12"
ODD = "drivers/odd dir/$x:y/hello.o"  # a space, '$' and ':' in one module path (module "hello")


def gen_args(objtree: Path, *extra: str) -> list[str]:
    return ["gen", "--objtree", str(objtree), "--srctree", SRCTREE, "--python", "python3",
            "--make-file", "kasalias.mk", "--syms", "vmlinux.syms.aliased", *extra]


def fixed_dependencies() -> list[Path]:
    """Stands in for kasalias' own files, which come and go as kasalias grows."""
    return [Path("/opt/kasalias/kasalias/buildgen.py"), Path("/opt/kasalias/templates/kasalias.ninja.j2"),
            Path("/opt/kasalias/templates/kasalias.mk.j2")]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KASALIAS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    want = path.read_text()
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            f"tests/golden/{name}", "rendered"))
        pytest.fail(f"{name} differs from the golden file (KASALIAS_UPDATE_GOLDEN=1 updates it):\n{diff}",
                    pytrace=False)


@pytest.fixture
def objtree(tmp_path: Path) -> Path:
    d = tmp_path / "obj"
    d.mkdir()
    (d / "modules.order").write_text(f"fs/minix/minix.o\nlib/crc7.o\n{ODD}\n")
    return d


@pytest.mark.parametrize("name", ["kasalias.ninja", "kasalias.mk"])
def test_golden(name: str, objtree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buildgen, "dependency_files", fixed_dependencies)
    monkeypatch.setattr(buildid, "build_id", lambda: "0123456789abcdef")
    assert main(gen_args(objtree)) == 0
    text = (objtree / name).read_text().replace(buildgen.ninja_binary(), "/opt/kasalias/bin/ninja")
    check_golden(name, text)


def test_dependency_files() -> None:
    """The generator edge's inputs: every module of kasalias and both templates."""
    deps = buildgen.dependency_files()
    names = {p.name for p in deps}
    assert {"buildgen.py", "cli.py", "reprocheck.py", "kasalias.ninja.j2", "kasalias.mk.j2"} <= names
    assert all(p.is_absolute() and p.is_file() for p in deps)


def test_ninja_escape() -> None:
    assert ninja_escape(ODD) == "drivers/odd$ dir/$$x$:y/hello.o"
    assert ninja_escape("echo $x: y", path=False) == "echo $$x: y"
    for bad in ("a\nb", "a\rb", "a\x1bb"):
        with pytest.raises(KasaliasError, match="newline or another control byte"):
            ninja_escape(bad)
    with pytest.raises(KasaliasError, match="'|' cannot be written"):
        ninja_escape("drivers/a|b/x.o")
    assert ninja_escape("echo a | b", path=False) == "echo a | b"  # in a command it is the shell's


def test_newline_refused(objtree: Path) -> None:
    """A tool path with a newline cannot be quoted for ninja: one error line, nothing written."""
    proc = run_kasalias(*gen_args(objtree, "--objcopy", "/opt/cross/bin/objcopy\nrm -rf /"), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("kasalias: error: ") and "newline" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert sorted(p.name for p in objtree.iterdir()) == ["modules.order"]


def test_two_producers_refused(objtree: Path) -> None:
    g = Graph()
    g.rule(Rule("r", "KASALIAS", "$out", "true"))
    g.build(Edge("r", ("a.ko.aliased",), ("a.ko",)))
    with pytest.raises(KasaliasError, match="two build steps produce a.ko.aliased"):
        g.build(Edge("r", ("b", "a.ko.aliased"), ("a.ko",)))
    assert [e.outputs for e in g.edges] == [("a.ko.aliased",)]
    # The same module twice in modules.order would be two producers of its .ko.aliased.
    (objtree / "modules.order").write_text("lib/crc7.o\nfs/minix/minix.o\nlib/crc7.o\n")
    proc = run_kasalias(*gen_args(objtree), check=False)
    assert proc.returncode == 1 and "two build steps produce lib/crc7.ko.aliased" in proc.stderr
    assert sorted(p.name for p in objtree.iterdir()) == ["modules.order"]


def test_bad_modules_order_line(objtree: Path) -> None:
    (objtree / "modules.order").write_text("lib/crc7.o\nlib/crc7.mod.c\n")
    proc = run_kasalias(*gen_args(objtree), check=False)
    assert proc.returncode == 1 and "modules.order:2: 'lib/crc7.mod.c' is not a module object" in proc.stderr


def test_written_only_when_changed(objtree: Path) -> None:
    cfg = GenConfig(objtree=objtree, srctree=Path(SRCTREE), modules_order="modules.order", vmlinux="vmlinux.o",
                    ninja_file="kasalias.ninja", make_file="kasalias.mk", python="python3", objcopy="objcopy",
                    nm="nm")
    assert buildgen.generate(cfg) == ["kasalias.ninja", "kasalias.mk"]
    before = {p.name: p.stat().st_mtime_ns for p in objtree.iterdir()}
    os.utime(objtree / "modules.order")
    assert buildgen.generate(cfg) == []
    assert {p.name: p.stat().st_mtime_ns for p in objtree.iterdir() if p.name != "modules.order"} == \
        {k: v for k, v in before.items() if k != "modules.order"}
    # A new module changes the graph, not the Make fragment (it does not list modules).
    with (objtree / "modules.order").open("a") as f:
        f.write("hello/hello.o\n")
    assert buildgen.generate(cfg) == ["kasalias.ninja"]
    assert "hello/hello.ko.aliased: kasalias_module " in (objtree / "kasalias.ninja").read_text()
    assert sorted(p.name for p in objtree.iterdir()) == ["kasalias.mk", "kasalias.ninja", "modules.order"]


FAKE_PYTHON = """#!/bin/sh
# Stands in for python3 in the ninja file: records each command line; the
# analysis copies a real alias table, 'module' and 'syms' run the real kasalias.
{py} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >> {log}
case "$3" in
analyze) cp {table} {freq} . ;;
gen) ;;
*) exec {py} "$@" ;;
esac
"""


def test_quoting_run_by_ninja(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    """Module paths with a space, '$' and ':', tool paths with spaces and a srctree with '$' and ':'
    go through the ninja file and the shell unchanged: a real ninja runs the graph."""
    obj = tmp_path / "obj"
    (obj / ODD).parent.mkdir(parents=True)
    (obj / "lib").mkdir()
    shutil.copy(build5.vmlinux, obj / "vmlinux")
    (obj / "vmlinux.o").write_bytes(b"")  # read by the analysis only, which is a stand-in here
    odd_ko = obj / ODD.replace(".o", ".ko")
    shutil.copy(build5.ko("hello"), odd_ko)
    shutil.copy(build5.ko("crc7"), obj / "lib" / "crc7.ko")
    (obj / ODD).write_bytes(b"")
    (obj / "lib" / "crc7.o").write_bytes(b"")
    (obj / "modules.order").write_text(f"{ODD}\nlib/crc7.o\n")
    tools = tmp_path / "tool dir"
    tools.mkdir()
    log = tmp_path / "argv.log"
    fake = tools / "python 3"
    fake.write_text(FAKE_PYTHON.format(py=sys.executable, log=f"'{log}'", table=analysis5 / "modules.symalias",
                                       freq=analysis5 / "modules.symbfreq"))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    for tool in ("objcopy", "nm"):
        (tools / f"my {tool}").symlink_to(shutil.which(tool))
    src = tmp_path / "src$1:x"
    src.mkdir()
    run_kasalias("gen", "--objtree", obj, "--srctree", src, "--python", fake, "--objcopy", tools / "my objcopy",
                 "--nm", tools / "my nm", "--syms", "vmlinux.syms.aliased")
    ninja = subprocess.run([buildgen.ninja_binary(), "-f", "kasalias.ninja"], cwd=obj, capture_output=True,
                           text=True)
    assert ninja.returncode == 0, ninja.stdout + ninja.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert ["-m", "kasalias", "analyze", "--vmlinux", "vmlinux.o", "--modules-order", "modules.order",
            "--objtree", ".", "--srctree", str(src), "-o", "."] in calls
    odd_rel = ODD.replace(".o", ".ko")
    assert ["-m", "kasalias", "module", "--aliases", "modules.symalias", "--objcopy", str(tools / "my objcopy"),
            "--suffix", ".aliased", odd_rel, "lib/crc7.ko"] in calls
    # The real 'kasalias module' aliased the module at the odd path (a copy of hello.ko).
    new = {s[2] for s in nm_symbols(Path(str(odd_ko) + ".aliased"))} - {s[2] for s in nm_symbols(odd_ko)}
    assert new, "no alias added to the module with the odd path"
    assert (obj / "lib" / "crc7.ko.aliased").is_file()
    syms = (obj / "vmlinux.syms").read_text().splitlines()
    aliased = (obj / "vmlinux.syms.aliased").read_text().splitlines()
    assert set(syms) < set(aliased)
    again = subprocess.run([buildgen.ninja_binary(), "-f", "kasalias.ninja", "-n"], cwd=obj, capture_output=True,
                           text=True)
    assert "no work to do" in again.stdout


@pytest.mark.parametrize("ninja,make", [("kasalias.ninja", "kasalias.ninja"), ("./x", "x"), ("x", "d/../x"),
                                        ("kasalias.ninja", "{objtree}/kasalias.ninja"), ("x", "link/x")])
def test_make_file_same_as_ninja_file_refused(ninja: str, make: str, objtree: Path) -> None:
    """--make-file naming the --ninja-file (under any spelling): one error line, nothing written
    (the Make fragment would replace the ninja file, which ninja then cannot read)."""
    (objtree / "link").symlink_to(".")
    make = make.format(objtree=objtree)
    proc = run_kasalias("gen", "--objtree", objtree, "--srctree", SRCTREE, "--ninja-file", ninja,
                        "--make-file", make, check=False)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"kasalias: error: --make-file {make} and --ninja-file {ninja} are the same file "), lines
    assert lines[0].endswith(": give two names")
    assert sorted(p.name for p in objtree.iterdir()) == ["link", "modules.order"]
    # Two names: both written, each what it should be.
    run_kasalias("gen", "--objtree", objtree, "--srctree", SRCTREE, "--ninja-file", ninja, "--make-file", "k.mk")
    assert "\nninja_required_version = " in (objtree / ninja).read_text()
    assert f"\nKASALIAS_NINJA := {ninja}\n" in (objtree / "k.mk").read_text()


@pytest.mark.parametrize("extra", [
    (),
    ("--objcopy", "/usr/bin/x86_64-linux-gnu-objcopy", "--no-analysis", "--aliases", "../k/modules.symalias",
     "--symbfreq", "../k/modules.symbfreq", "--module-srctree", "/src/ext", "--modules-order", "ext/modules.order",
     "--vmlinux", "vmlinux", "--ninja-file", "ext/kasalias.ninja", "--nm", "llvm-nm"),
    ("--analyze-option=--alias-first", "--analyze-option=--data", "--analyze-option=--kernel-version=7.3"),
])
def test_gen_argv_round_trip(extra: tuple[str, ...], objtree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GenConfig.argv() is the command line the generator edge runs again: parsed by kasalias'
    own parser (from objtree, where ninja runs it), it gives the same configuration."""
    from kasalias.cli import build_parser

    cfg = GenConfig.from_args(build_parser().parse_args(gen_args(objtree, *extra)), "b1")
    monkeypatch.chdir(objtree)
    again = GenConfig.from_args(build_parser().parse_args(cfg.argv()), "b1")
    assert again == cfg
    assert again.argv() == cfg.argv()
    assert cfg.argv()[:3] == ["gen", "--objtree", "."]


def test_module_groups() -> None:
    """Every module once, in order, groups of about GROUP_SIZE (at most twice that); a module
    added to modules.order changes one group, not the groups after it."""
    mods = [f"drivers/d{i // 50}/m{i}.o" for i in range(4000)]
    groups = module_groups(mods)
    assert [m for g in groups for m in g] == mods
    assert max(map(len, groups)) <= 2 * buildgen.GROUP_SIZE
    assert 4000 / len(groups) > buildgen.GROUP_SIZE / 2
    added = module_groups(mods[:2000] + ["drivers/new/x.o"] + mods[2000:])
    changed = [g for g in added if g not in groups]
    assert len(changed) == 1 and "drivers/new/x.o" in changed[0] and len(added) - len(groups) in (0, 1)
    assert module_groups(mods) == groups
