"""Where an alias goes beside its original (the alias table's placement), read back from the
files written: the .syms file scripts/kallsyms sorts, and the .ko's symbol table the module
loader reads. The kernel gives an address the first name there (scripts/kallsyms order for
vmlinux, symbol-table order for a module), and ftrace, fprobe, bpftrace's checks, %pS and
backtraces all use that name: alias-first makes it the alias, original-first keeps the original.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import Build, analyze, run_kasalias
from elfread import elf_symbols
from kasalias.aliastable import ALIAS_FIRST, ORIGINAL_FIRST, AliasTable
from test_kallsyms_order import kallsyms_key
from test_modwriter import relocations, section_bytes


@pytest.fixture(scope="module")
def analysis_first(build5: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analyze(build5, tmp_path_factory.mktemp("kas5-first"), "--alias-first")


def first_name_at(lines: list[tuple[int, str, str]]) -> dict[int, str]:
    """The name the kernel gives each address: scripts/kallsyms' order (compare_symbols)."""
    order = sorted(enumerate(lines), key=lambda e: (e[1][0], *kallsyms_key(e[1][1], e[1][2], e[0])))
    out: dict[int, str] = {}
    for _i, (addr, _letter, name) in order:
        out.setdefault(addr, name)
    return out


def read_syms(path: Path) -> list[tuple[int, str, str]]:
    return [(int(a, 16), t, n) for a, t, n in (l.split(" ", 2) for l in path.read_text().splitlines())]


def test_table_says_its_placement(analysis5: Path, analysis_first: Path) -> None:
    assert AliasTable.read(analysis5 / "modules.symalias").placement == ORIGINAL_FIRST
    first = AliasTable.read(analysis_first / "modules.symalias")
    assert first.placement == ALIAS_FIRST
    # the same rows: only where they go differs
    assert first.rows == AliasTable.read(analysis5 / "modules.symalias").rows
    assert (analysis_first / "modules.symalias").read_bytes().splitlines()[1] == b"# placement: alias-first"


@pytest.mark.parametrize("placement", [ORIGINAL_FIRST, ALIAS_FIRST])
def test_vmlinux_alias_is_the_first_name_only_alias_first(build5: Build, analysis5: Path, analysis_first: Path,
                                                          tmp_path: Path, placement: str) -> None:
    table = (analysis_first if placement == ALIAS_FIRST else analysis5) / "modules.symalias"
    syms = tmp_path / "vmlinux.syms"
    syms.write_text(subprocess.run(["nm", "-n", str(build5.vmlinux)], check=True, capture_output=True,
                                   text=True).stdout)
    out = tmp_path / "vmlinux.syms.aliased"
    run_kasalias("syms", "--aliases", table, "--image", build5.vmlinux, syms, out)
    before, after = read_syms(syms), read_syms(out)
    assert [l for l in after if "@" not in l[2]] == before  # every original line, in its order
    aliases = [(i, l) for i, l in enumerate(after) if "@" in l[2]]
    assert len(aliases) >= 10
    named = first_name_at(after)
    for i, (addr, letter, alias) in aliases:
        beside = after[i + 1] if placement == ALIAS_FIRST else after[i - 1]
        assert beside == (addr, letter, alias.split("@", 1)[0]), (alias, beside)
        assert (named[addr] == alias) == (placement == ALIAS_FIRST), (alias, named[addr])


def loader_name_at(symbols: list[dict[str, object]]) -> dict[tuple[object, object], str]:
    """find_kallsyms_symbol(): the first symbol in table order at a (section, value)."""
    out: dict[tuple[object, object], str] = {}
    for s in symbols:
        if s["name"] and s["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE"):
            out.setdefault((s["section"], s["value"]), str(s["name"]))
    return out


@pytest.mark.parametrize("writer", ["kasalias", "objcopy"])
def test_module_alias_first_takes_the_originals_entry(build5: Build, analysis_first: Path, tmp_path: Path,
                                                      writer: str) -> None:
    """minix has two copies each of get_block, get_branch, ... (itree_common.c included twice):
    each alias is the first name at its copy's address; the originals keep their order among
    themselves (livepatch's sympos); relocations, by symbol, are those of X.ko."""
    src = build5.ko("minix")
    out = tmp_path / "minix.ko.aliased"
    run_kasalias("module", "--aliases", analysis_first / "modules.symalias",
                 *(["--objcopy", "objcopy"] if writer == "objcopy" else []), src, out)
    old, new = elf_symbols(src), elf_symbols(out)
    aliases = [s for s in new if "@" in str(s["name"])]
    assert len(aliases) >= 4 and len(new) == len(old) + len(aliases)
    named = loader_name_at(new)
    for a in aliases:
        assert named[(a["section"], a["value"])] == a["name"], a
        base = str(a["name"]).split("@", 1)[0]
        original = [s for s in new if s["name"] == base and (s["section"], s["value"]) == (a["section"], a["value"])]
        assert len(original) == 1 and int(original[0]["index"]) > int(a["index"])  # type: ignore[call-overload]
    for name in {str(a["name"]).split("@", 1)[0] for a in aliases}:
        assert [(s["section"], s["value"]) for s in new if s["name"] == name] == \
               [(s["section"], s["value"]) for s in old if s["name"] == name], name
    # the same relocations: an original's entry now bears its alias's name
    renamed = {str(a["name"]): str(a["name"]).split("@", 1)[0] for a in aliases}
    assert [(*r[:4], renamed.get(r[4], r[4])) for r in relocations(out)] == relocations(src)
    assert section_bytes(out) == section_bytes(src)


def test_module_writers_agree_alias_first(build5: Build, analysis_first: Path, tmp_path: Path) -> None:
    for name in ("minix", "hello"):
        src = build5.ko(name)
        own, oc = tmp_path / f"{name}.own", tmp_path / f"{name}.objcopy"
        run_kasalias("module", "--aliases", analysis_first / "modules.symalias", src, own)
        run_kasalias("module", "--aliases", analysis_first / "modules.symalias", "--objcopy", "objcopy", src, oc)
        assert elf_symbols(own) == elf_symbols(oc), name


def test_own_writer_output_takes_the_fast_check(build5: Build, analysis_first: Path, tmp_path: Path) -> None:
    """check_output reads only the new and renamed entries of the own writer's layout (the
    general check reads every symbol): alias-first must keep that layout."""
    from kasalias.modwriter import _symtab_extends, aliases_for_module
    from kasalias.symbols import ElfImage

    table = AliasTable.read(analysis_first / "modules.symalias")
    out = tmp_path / "minix.ko.aliased"
    run_kasalias("module", "--aliases", analysis_first / "modules.symalias", build5.ko("minix"), out)
    with ElfImage(build5.ko("minix")) as a, ElfImage(out) as b:
        new = sorted(aliases_for_module(a, table, None, None, None), key=lambda n: n.index)
        assert new and _symtab_extends(a, b, new, "kasalias", True)
