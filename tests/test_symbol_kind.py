"""Function or object by the ELF symbol type, not the nm letter: Linux 7.2's x86 .data is
executable (WAX), so nm and kallsyms print 't' for every object in it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import run_kasalias
from elfread import nm_symbols

SOURCE = """\
static int algs[4] = {%d, 2, 3, 4};
static int __attribute__((noinline)) name_show(int i) { algs[i & 3] += i; return algs[0]; }
int %s_entry(int i) { return name_show(i); }
"""


@pytest.fixture(scope="module")
def wax_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two units, each with a static object and a static function of one name, linked with
    ld -r, .data then made executable as in a 7.2 vmlinux."""
    d = tmp_path_factory.mktemp("wax")
    for n, unit in enumerate("ab"):
        (d / f"{unit}.c").write_text(SOURCE % (n, unit))
        subprocess.run(["gcc", "-O2", "-g", "-gdwarf-5", "-c", "-o", str(d / f"{unit}.o"), str(d / f"{unit}.c")],
                       check=True, cwd=d)
    subprocess.run(["ld", "-r", "-o", str(d / "plain.o"), str(d / "a.o"), str(d / "b.o")], check=True)
    subprocess.run(["objcopy", "--set-section-flags", ".data=alloc,load,data,code", str(d / "plain.o"),
                    str(d / "wax.o")], check=True)
    return d / "wax.o"


def _copies(path: Path, *policy: str) -> dict[str, list[dict[str, object]]]:
    out = run_kasalias("report", "--vmlinux", path, "--kernel-version", "6.12", "--json", *policy).stdout
    return {n["name"]: n["copies"] for n in json.loads(out)["names"]}


def test_object_in_executable_section_is_data(wax_object: Path) -> None:
    assert {letter for _v, letter, name in nm_symbols(wax_object) if name == "algs"} == {"t"}
    text = _copies(wax_object)
    assert [c["covered"] for c in text["algs"]] == [False, False]  # the text policy leaves objects out
    assert sorted(c["alias"] for c in text["name_show"]) == ["name_show@a_c_2", "name_show@b_c_2"]
    data = _copies(wax_object, "--data")
    # found as variables in DWARF; the report keeps the letter the kernel prints
    assert sorted((c["alias"], c["type"]) for c in data["algs"]) == [("algs@a_c_1", "t"), ("algs@b_c_1", "t")]


def test_position_independent_vmlinux(tmp_path: Path) -> None:
    """arm64 links vmlinux as a PIE (ET_DYN): read like an executable."""
    for n, unit in enumerate("ab"):
        (tmp_path / f"{unit}.c").write_text(SOURCE % (n, unit))
        subprocess.run(["gcc", "-O2", "-g", "-fPIE", "-c", f"{unit}.c"], check=True, cwd=tmp_path)
    subprocess.run(["ld", "-pie", "-e", "a_entry", "-o", "vmlinux", "a.o", "b.o"], check=True, cwd=tmp_path)
    assert (tmp_path / "vmlinux").read_bytes()[16] == 3  # e_type ET_DYN
    text = _copies(tmp_path / "vmlinux")
    assert sorted(c["alias"] for c in text["name_show"]) == ["name_show@a_c_2", "name_show@b_c_2"]
