"""kasalias syms: alias lines placed in a NEW .syms file, read back from that file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import run_kasalias
from kasalias.aliastable import AliasRow, AliasTable

SOURCE = "static int __attribute__((noinline)) parse_header(int i) { return i * %d; }\n" \
         "int %s_entry(int i) { return parse_header(i); }\n"
# what ThinLTO makes of a static it promotes: a global, hidden (the final link makes it local again)
HIDDEN = "__attribute__((visibility(\"hidden\"), noinline)) int parse_header(int i) { return i * 3; }\n" \
         "int b_entry(int i) { return parse_header(i); }\n"


def _linked(d: Path) -> Path:
    (d / "a.c").write_text(SOURCE % (2, "a"))
    (d / "b.c").write_text(HIDDEN)
    for unit in "ab":
        subprocess.run(["gcc", "-O2", "-c", "-o", str(d / f"{unit}.o"), str(d / f"{unit}.c")], check=True, cwd=d)
    # ld.lld, as the kernel's LLVM=1 link: it makes a hidden global local in an executable's .symtab
    subprocess.run(["ld.lld", "-e", "a_entry", "-o", str(d / "vmlinux"), str(d / "a.o"), str(d / "b.o")], check=True)
    return d / "vmlinux"


def test_promoted_global_made_local_again(tmp_path: Path) -> None:
    """A ThinLTO-promoted global (keyed as a global in vmlinux.o) that the final link made local
    (hidden) beside a static of the same name: the row takes the hidden local no other row names."""
    vmlinux = _linked(tmp_path)
    syms = tmp_path / "vmlinux.syms"
    syms.write_text(subprocess.run(["nm", "-n", str(vmlinux)], check=True, capture_output=True, text=True).stdout)
    assert len([l for l in syms.read_text().splitlines() if l.endswith(" parse_header")]) == 2
    table = tmp_path / "modules.symalias"
    # (with ThinLTO the demoted symbol sits in another object's file group than its unit's: here
    # the row's unit is not b.c either)
    AliasTable([AliasRow("vmlinux", "", 0, "parse_header", 0, "parse_header@lib_b_c_1", "lib/b.c:1",
                         "lib/decompress_unlzo.c"),
                AliasRow("vmlinux", "a.c", 0, "parse_header", 0, "parse_header@lib_a_c_1", "lib/a.c:1", "lib/a.c")],
               ["vmlinux"]).write(table)
    out = tmp_path / "vmlinux.syms.aliased"
    run_kasalias("syms", "--aliases", table, "--image", vmlinux, syms, out)
    lines = out.read_text().splitlines()
    hidden = next(l.split()[1] for l in subprocess.run(["readelf", "-sW", str(vmlinux)], capture_output=True,
                                                         text=True).stdout.splitlines()
                  if l.endswith(" parse_header") and " LOCAL  HIDDEN " in l)
    for alias, at_hidden in (("parse_header@lib_b_c_1", True), ("parse_header@lib_a_c_1", False)):
        i = lines.index(next(l for l in lines if l.endswith(" " + alias)))
        assert lines[i - 1].endswith(" parse_header")  # right after its original
        assert (int(lines[i].split()[0], 16) == int(hidden, 16)) == at_hidden, (alias, hidden)


def test_alias_that_cannot_be_placed_warns(tmp_path: Path) -> None:
    vmlinux = _linked(tmp_path)
    syms = tmp_path / "vmlinux.syms"
    syms.write_text(subprocess.run(["nm", "-n", str(vmlinux)], check=True, capture_output=True, text=True).stdout)
    table = tmp_path / "modules.symalias"
    rows = [AliasRow("vmlinux", "x.c", 0, "parse_header", 0, "parse_header@lib_c_c_1", "lib/c.c:1", "lib/c.c"),
            AliasRow("vmlinux", "", 0, "a_entry", 0, "a_entry@lib_a_c_2", "lib/a.c:2", "lib/a.c")]
    AliasTable(rows, ["vmlinux"]).write(table)
    proc = run_kasalias("syms", "--aliases", table, "--image", vmlinux, syms, tmp_path / "out.syms")
    assert "parse_header (lib/c.c, alias parse_header@lib_c_c_1) is not in this image" in proc.stderr
    assert "parse_header@" not in (tmp_path / "out.syms").read_text()
