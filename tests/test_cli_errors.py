"""Bad input gets one 'kasalias: error: ...' line, a non-zero exit, and no output file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Build, run_kasalias
from kasalias.aliastable import AliasTable


def assert_one_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kasalias: error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert proc.stdout == ""


def analyze_args(build: Build, vmlinux: Path, out: Path) -> list[object]:
    return ["analyze", "--vmlinux", vmlinux, "--modules-order", build.objtree / "modules.order",
            "--objtree", build.objtree, "--srctree", build.srctree, "-o", out]


@pytest.fixture
def bad_inputs(build5: Build, tmp_path: Path) -> dict[str, Path]:
    good = build5.vmlinux_o.read_bytes()
    paths = {"text": tmp_path / "text.o", "truncated": tmp_path / "truncated.o",
             "stripped": tmp_path / "stripped.o", "nodwarf": tmp_path / "nodwarf.o",
             "missing": tmp_path / "does-not-exist.o"}
    paths["text"].write_text("this is not an ELF file\n")
    paths["truncated"].write_bytes(good[: len(good) // 3])
    subprocess.run(["strip", "-o", str(paths["stripped"]), str(build5.vmlinux_o)], check=True)
    subprocess.run(["strip", "--strip-debug", "-o", str(paths["nodwarf"]), str(build5.vmlinux_o)], check=True)
    return paths


@pytest.mark.parametrize("kind,needle", [("text", "not a readable ELF"), ("truncated", "truncated"),
                                         ("stripped", "no symbol table"), ("nodwarf", "no DWARF"),
                                         ("missing", "cannot read: No such file")])
def test_analyze_bad_vmlinux(kind: str, needle: str, build5: Build, bad_inputs: dict[str, Path],
                             tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_kasalias(*analyze_args(build5, bad_inputs[kind], out), check=False)
    assert_one_error(proc, needle)
    assert not out.exists() or list(out.iterdir()) == []


def test_analyze_missing_module(build5: Build, tmp_path: Path) -> None:
    order = tmp_path / "modules.order"
    order.write_text("no/such/module.o\n")
    proc = run_kasalias("analyze", "--vmlinux", build5.vmlinux_o, "--modules-order", order, "--objtree",
                        build5.objtree, "-o", tmp_path / "out", check=False)
    assert_one_error(proc, "no such module")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv,needle", [([], "required"), (["analyze"], "--vmlinux"),
                                         (["frobnicate"], "invalid choice"),
                                         (["syms", "--aliases", "x"], "required"),
                                         (["analyze", "--vmlinux", "v", "--bogus"], "unrecognized")])
def test_wrong_arguments(argv: list[str], needle: str) -> None:
    proc = run_kasalias(*argv, check=False)
    assert proc.returncode == 2
    assert_one_error(proc, needle)


def test_syms_bad_line_leaves_no_output(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    syms = tmp_path / "in.syms"
    syms.write_text("ffffffff81000000 T _start\nthis is not a syms line\n")
    out = tmp_path / "out.syms"
    proc = run_kasalias("syms", "--aliases", analysis5 / "modules.symalias", "--image", build5.vmlinux, syms, out,
                        check=False)
    assert_one_error(proc, ":2:", "ADDR TYPE NAME")
    assert not out.exists()


def test_syms_not_an_alias_table(build5: Build, tmp_path: Path) -> None:
    (tmp_path / "t").write_text("name:1\n")
    proc = run_kasalias("syms", "--aliases", tmp_path / "t", "--image", build5.vmlinux, tmp_path / "t",
                        tmp_path / "o", check=False)
    assert_one_error(proc, "not a kasalias alias table")
    assert not (tmp_path / "o").exists()


def test_module_errors_leave_input_alone(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    table = analysis5 / "modules.symalias"
    minix = tmp_path / "minix.ko"
    shutil.copy2(build5.ko("minix"), minix)
    before = (minix.read_bytes(), minix.stat().st_mtime_ns)
    cases = [
        (["--objcopy", "/no/such/objcopy", minix, tmp_path / "a.ko.aliased"], "/no/such/objcopy"),
        (["--objcopy", "false", minix, tmp_path / "b.ko.aliased"], "false failed"),
        ([minix, tmp_path / "no-such-dir" / "c.ko.aliased"], "does not exist"),
        ([build5.vmlinux, tmp_path / "d.ko.aliased"], "not a relocatable"),
        ([minix, minix], "an output must be another file"),
    ]
    for args, needle in cases:
        proc = run_kasalias("module", "--aliases", table, *args, check=False)
        assert_one_error(proc, needle)
    assert (minix.read_bytes(), minix.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minix.ko"]


@pytest.mark.parametrize("argv", [
    ["module", "--aliases", "T", "in.ko", "out.ko"],
    ["module", "in.ko", "--aliases=T", "out.ko"],
    ["-v", "module", "--aliases", "T", "--objcopy", "/x/objcopy", "in.ko", "out.ko"],
    ["-vv", "--verbose", "module", "--objcopy=o", "--aliases", "A", "--aliases", "T", "in.ko", "out.ko"],
    ["module", "--aliases", "T", "in=1.ko", "out.ko"],
])
def test_module_fast_parse_equals_argparse(argv: list[str]) -> None:
    """The per-module command line parsed without argparse reads as argparse reads it."""
    from kasalias.cli import _module_fast_args, build_parser

    fast = _module_fast_args(argv)
    assert fast is not None
    full = build_parser().parse_args(argv)
    assert vars(fast) == vars(full)


@pytest.mark.parametrize("argv", [
    ["module", "--aliases", "T", "in.ko"], ["module", "in.ko", "out.ko"], ["module", "-h"],
    ["module", "--alias", "T", "in.ko", "out.ko"], ["module", "--aliases", "-x", "in.ko", "out.ko"],
    ["module", "--aliases", "T", "--symbfreq", "F", "in.ko", "out.ko"], ["module", "--aliases", "T", "-", "o"],
    ["module", "--aliases", "T", "a", "b", "c"], ["-q", "module", "--aliases", "T", "a", "b"], ["analyze"],
    ["module", "--aliases", "T", "--", "a", "b"], ["module", "--aliases"],
])
def test_module_fast_parse_leaves_the_rest_to_argparse(argv: list[str]) -> None:
    from kasalias.cli import _module_fast_args

    assert _module_fast_args(argv) is None


def test_alias_table_index(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    """A module step reads its rows through the table's index; a broken index is an error."""
    table = AliasTable.read(analysis5 / "modules.symalias")
    for image in sorted(table.images) + ["no_such_module"]:
        one = AliasTable.read(analysis5 / "modules.symalias", only_image=image)
        assert [r.astuple() for r in one.rows] == [r.astuple() for r in table.for_image(image)]
        assert (image in one.images) == (image in table.images)
        assert one.aliases() == table.aliases()
    data = (analysis5 / "modules.symalias").read_bytes()
    line = next(ln for ln in data.split(b"\n") if ln.startswith(b"# image: minix "))
    bad = tmp_path / "bad.symalias"
    bad.write_bytes(data.replace(line, line[:-1] + b"7" if not line.endswith(b"7") else line[:-1] + b"8"))
    proc = run_kasalias("module", "--aliases", bad, build5.ko("minix"), tmp_path / "y.ko", check=False)
    assert_one_error(proc, "index line of minix")
    assert not (tmp_path / "y.ko").exists()


def test_step_launcher_reports_and_exits(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    """The per-module step as the build starts it (python -c LAUNCHER, which skips the
    interpreter's shutdown): its exit status, error line and -v output all get out."""
    import sys

    from kasalias.buildgen import LAUNCHER

    def step(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", LAUNCHER, *map(str, args)], capture_output=True, text=True)

    table = analysis5 / "modules.symalias"
    bad = step("module", "--aliases", table, tmp_path / "none.ko", tmp_path / "out.ko")
    assert_one_error(bad, "none.ko")
    ok = step("-v", "module", "--aliases", table, build5.ko("minix"), tmp_path / "minix.ko.aliased")
    assert ok.returncode == 0 and ok.stderr.startswith("kasalias: info: ") and "aliases" in ok.stderr, ok.stderr
    assert (tmp_path / "minix.ko.aliased").is_file()
    usage = step("module", "--aliases", table)
    assert usage.returncode == 2 and "kasalias: error:" in usage.stderr


def test_older_table_format_is_refused(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    """One table format is read, the one written: a build directory's table is made again by
    the kasalias that reads it (an upgrade relinks vmlinux), so an older table is an error."""
    from kasalias.aliastable import HEADER

    data = (analysis5 / "modules.symalias").read_bytes()
    old = tmp_path / "old.symalias"
    old.write_bytes(HEADER.replace(b"table 4", b"table 3") + data[len(HEADER):])
    proc = run_kasalias("module", "--aliases", old, build5.ko("minix"), tmp_path / "a.ko", check=False)
    assert proc.returncode == 1 and proc.stderr == f"kasalias: error: {old}: not a kasalias alias table (format 4)\n"
    assert not (tmp_path / "a.ko").exists()
