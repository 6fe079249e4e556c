"""Bad input gets one 'kasalias: error: ...' line, a non-zero exit, and no output file."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def test_module_group_step(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    """The step over a group of modules (--suffix, as the build runs it): every output is the one
    the single form writes, each module's Kbuild-style line comes when KASALIAS_ECHO is set, and
    a bad module stops the group with one error line naming it."""
    import os

    table = analysis5 / "modules.symalias"
    names = ("minix", "crc7", "hello")
    for name in names:
        shutil.copy(build5.ko(name), tmp_path / f"{name}.ko")
        run_kasalias("module", "--aliases", table, build5.ko(name), tmp_path / f"{name}.single")
    group = [tmp_path / f"{n}.ko" for n in names]
    proc = subprocess.run([sys.executable, "-m", "kasalias", "module", "--aliases", str(table), "--suffix",
                           ".aliased", *map(str, group)], capture_output=True, text=True,
                          env=os.environ | {"KASALIAS_ECHO": "1"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout == "".join(f"  KASALIAS {m}.aliased\n" for m in group)
    for name in names:
        assert (tmp_path / f"{name}.ko.aliased").read_bytes() == (tmp_path / f"{name}.single").read_bytes()
    (tmp_path / "bad.ko").write_bytes(b"not ELF")
    bad = run_kasalias("module", "--aliases", table, "--suffix", ".x", group[0], tmp_path / "bad.ko", group[1],
                       check=False)
    assert_one_error(bad, "bad.ko")
    assert (tmp_path / "minix.ko.x").is_file() and not (tmp_path / "bad.ko.x").exists()
    assert not (tmp_path / "crc7.ko.x").exists()
    # an output that is another module of the group is refused before anything is written
    clash = run_kasalias("module", "--aliases", table, "--suffix", ".aliased", group[1], tmp_path / "crc7.ko.aliased",
                         check=False)
    assert_one_error(clash, "an output must be another file")
    for usage, needle in ((["--suffix", "", "a.ko"], "--suffix ''"), (["--suffix", "/x", "a.ko"], "--suffix '/x'"),
                          (["a.ko"], "expected INPUT OUTPUT"), (["a.ko", "b", "c"], "expected INPUT OUTPUT")):
        assert_one_error(run_kasalias("module", "--aliases", table, *usage, check=False), needle)


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
