"""kasalias syms: alias lines placed in a NEW .syms file, read back from that file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import run_kasalias
from kasalias.aliastable import AliasRow, AliasTable

SOURCE = "static int __attribute__((noinline)) parse_header(int i) { return i * %d; }\n" \
         "int %s_entry(int i) { return parse_header(i); }\n"


def _linked(d: Path) -> Path:
    for n, unit in enumerate("ab", 2):
        (d / f"{unit}.c").write_text(SOURCE % (n, unit))
        subprocess.run(["gcc", "-O2", "-c", "-o", str(d / f"{unit}.o"), str(d / f"{unit}.c")], check=True, cwd=d)
    subprocess.run(["ld", "-e", "a_entry", "-o", str(d / "vmlinux"), str(d / "a.o"), str(d / "b.o")], check=True)
    return d / "vmlinux"


def test_promoted_global_found_by_its_unit(tmp_path: Path) -> None:
    """A ThinLTO-promoted global (keyed as a global in vmlinux.o) that the final link made local
    beside a local of the same name: placed on the copy whose STT_FILE is its unit's file."""
    vmlinux = _linked(tmp_path)
    syms = tmp_path / "vmlinux.syms"
    syms.write_text(subprocess.run(["nm", "-n", str(vmlinux)], check=True, capture_output=True, text=True).stdout)
    table = tmp_path / "modules.symalias"
    AliasTable([AliasRow("vmlinux", "", 0, "parse_header", 0, "parse_header@lib_b_c_1", "lib/b.c:1", "lib/b.c")],
               ["vmlinux"]).write(table)
    out = tmp_path / "vmlinux.syms.aliased"
    run_kasalias("syms", "--aliases", table, "--image", vmlinux, syms, out)
    lines = out.read_text().splitlines()
    i = lines.index(next(l for l in lines if l.endswith(" parse_header@lib_b_c_1")))
    assert lines[i - 1].endswith(" parse_header")  # right after its original
    a_entry = int(next(l.split()[0] for l in lines if l.endswith(" a_entry")), 16)
    assert int(lines[i].split()[0], 16) > a_entry  # b.o's copy: b.o is linked after a.o


def test_alias_that_cannot_be_placed_warns(tmp_path: Path) -> None:
    vmlinux = _linked(tmp_path)
    syms = tmp_path / "vmlinux.syms"
    syms.write_text(subprocess.run(["nm", "-n", str(vmlinux)], check=True, capture_output=True, text=True).stdout)
    table = tmp_path / "modules.symalias"
    rows = [AliasRow("vmlinux", "", 0, "parse_header", 0, "parse_header@lib_c_c_1", "lib/c.c:1", "lib/c.c"),
            AliasRow("vmlinux", "", 0, "a_entry", 0, "a_entry@lib_a_c_2", "lib/a.c:2", "lib/a.c")]
    AliasTable(rows, ["vmlinux"]).write(table)
    proc = run_kasalias("syms", "--aliases", table, "--image", vmlinux, syms, tmp_path / "out.syms")
    assert "parse_header (lib/c.c, alias parse_header@lib_c_c_1) is not in this image" in proc.stderr
    assert "parse_header@" not in (tmp_path / "out.syms").read_text()
