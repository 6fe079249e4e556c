"""kasalias module: X.ko -> a NEW X.ko.aliased, read back from the ELF file written."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import SAMPLE, Build, run_kasalias
from elfread import elf_symbols
from kasalias.aliastable import AliasTable


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def alias_module(build: Build, analysis: Path, name: str, out_dir: Path) -> tuple[Path, Path]:
    src = build.ko(name)
    out = out_dir / (src.name + ".aliased")
    run_kasalias("module", "--aliases", analysis / "modules.symalias", src, out)
    return src, out


def relocations(path: Path) -> list[tuple[str, int, int, int, str]]:
    """Every relocation as (section, offset, type, addend, symbol name or section name)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    out = []
    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        for sec in elf.iter_sections():
            if isinstance(sec, RelocationSection):
                for r in sec.iter_relocations():
                    sym = symtab.get_symbol(r["r_info_sym"])
                    name = sym.name if sym["st_info"]["type"] != "STT_SECTION" else \
                        "section:" + elf.get_section(sym["st_shndx"]).name
                    out.append((sec.name, r["r_offset"], r["r_info_type"], r.entry.get("r_addend", 0), name))
    return out


def section_bytes(path: Path) -> dict[str, bytes]:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        return {s.name: s.data() for s in elf.iter_sections()
                if s.name not in (".symtab", ".strtab", ".shstrtab") and not s.name.startswith(".rela")
                and s["sh_type"] != "SHT_NOBITS"}


def test_minix_include_c_copies_get_distinct_aliases(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    src = build5.ko("minix")
    before = (sha256(src), src.stat().st_mtime_ns)
    _, out = alias_module(build5, analysis5, "minix", tmp_path)
    assert (sha256(src), src.stat().st_mtime_ns) == before  # the input is never modified
    syms = elf_symbols(out)
    by_name = {s["name"]: s for s in syms}
    table = AliasTable.read(analysis5 / "modules.symalias").for_image("minix")
    assert {r.symbol for r in table} >= {"get_block", "get_branch", "free_branches"}
    orig = {(s["name"], s["value"]): s for s in elf_symbols(src)}
    for r in table:
        a = by_name[r.alias]
        # same section, value, size and type as a same-named original, and LOCAL, after it
        o = orig[(r.symbol, a["value"])]
        assert (a["section"], a["size"], a["type"], a["bind"]) == (o["section"], o["size"], o["type"], "STB_LOCAL")
        assert a["index"] > o["index"]
    # both copies of get_block: two aliases at two different addresses
    gb = [s for s in syms if s["name"].startswith("get_block@")]
    assert len(gb) == 2 and len({s["value"] for s in gb}) == 2
    # symbol table well formed: locals first, sh_info = first global
    binds = [s["bind"] for s in syms]
    first_global = binds.index("STB_GLOBAL")
    assert all(b == "STB_LOCAL" for b in binds[:first_global])
    assert all(b != "STB_LOCAL" for b in binds[first_global:])
    out_info = subprocess.run(["readelf", "-SW", str(out)], capture_output=True, text=True, check=True).stdout
    symtab_line = next(l for l in out_info.splitlines() if " .symtab " in l)
    assert int(symtab_line.split()[-2]) == first_global
    # relocations name the same symbols; every original section's bytes unchanged
    assert relocations(out) == relocations(src)
    assert section_bytes(out) == section_bytes(src)


def test_shared_names_with_vmlinux_and_other_modules(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    for module, name in (("hello", "name_show"), ("rpmsg_char", "name_show"), ("rpmsg_char", "jhash"),
                         ("kobject_example", "b_show"), ("kset_example", "b_show")):
        _, out = alias_module(build5, analysis5, module, tmp_path)
        names = [s["name"] for s in elf_symbols(out)]
        assert sum(n.startswith(name + "@") for n in names) == 1, (module, name)


def test_module_with_nothing_to_alias_is_copied(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    src, out = alias_module(build5, analysis5, "crc7", tmp_path)
    assert out.read_bytes() == src.read_bytes()


def test_same_inputs_same_bytes(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, a = alias_module(build5, analysis5, "minix", tmp_path / "a")
    _, b = alias_module(build5, analysis5, "minix", tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


def test_aliased_module_links_strips_and_compresses(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    _, out = alias_module(build5, analysis5, "minix", tmp_path)
    aliases = {r.alias for r in AliasTable.read(analysis5 / "modules.symalias").for_image("minix")}
    linked = tmp_path / "linked.o"
    subprocess.run(["ld", "-r", "-o", str(linked), str(out)], check=True)
    stripped = tmp_path / "stripped.ko"
    subprocess.run(["strip", "--strip-debug", "-o", str(stripped), str(out)], check=True)
    for p in (linked, stripped):
        assert aliases <= {s["name"] for s in elf_symbols(p)}, p
    # compression as modules_install does it; decompressed, the aliases are there
    for tool, ext in (("xz", ".xz"), ("zstd", ".zst")):
        if shutil.which(tool) is None:
            continue
        comp = Path(str(stripped) + ext)
        subprocess.run([tool, "-q", "-k", "-f", str(stripped)], check=True)
        back = tmp_path / f"back{ext}.ko"
        subprocess.run([tool, "-d", "-q", "-c", str(comp)], check=True, stdout=back.open("wb"))
        assert aliases <= {s["name"] for s in elf_symbols(back)}


def test_out_of_tree_module_uses_shipped_statistics(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    ext = tmp_path / "ext"
    subprocess.run(["make", "-s", "-C", str(SAMPLE / "extmod"), f"O={ext}", f"SRCTREE={SAMPLE}"], check=True,
                   capture_output=True)
    src = ext / "hello_ext.ko"
    out = tmp_path / "hello_ext.ko.aliased"
    proc = run_kasalias("module", "--aliases", analysis5 / "modules.symalias", src, out, check=False)
    assert proc.returncode != 0 and "--symbfreq" in proc.stderr  # not analysed: needs the statistics
    run_kasalias("module", "--aliases", analysis5 / "modules.symalias", "--symbfreq",
                 analysis5 / "modules.symbfreq", "--srctree", SAMPLE, src, out)
    names = {s["name"] for s in elf_symbols(out)}
    aliased = {n for n in names if "@" in n}
    assert aliased == {"name_show@extmod_hello_ext_hello_ext_c_" + line_of(SAMPLE / "extmod/hello_ext/hello_ext.c",
                                                                            "name_show(")}
    assert not any(n.startswith("hello_unique_ext_fn@") for n in names)


def line_of(path: Path, needle: str) -> str:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line and line.lstrip().startswith("static"):
            return str(i)
    raise AssertionError(needle)


def test_output_check_catches_a_changed_relocation(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    """The check that guards every output fails on a relocation that objcopy would have broken."""
    from elftools.elf.elffile import ELFFile

    from kasalias.errors import KasaliasError
    from kasalias.modwriter import aliases_for_module, check_output
    from kasalias.symbols import ElfImage

    src_path, out = alias_module(build5, analysis5, "minix", tmp_path)
    src = ElfImage(src_path)
    new = aliases_for_module(src, AliasTable.read(analysis5 / "modules.symalias"), None, None, None)
    check_output(src, str(out), new, "objcopy")  # the real output passes
    with open(out, "rb") as f:
        rela = next(s for s in ELFFile(f).iter_sections() if s.name == ".rela.text")
        at = rela["sh_offset"] + 16  # the addend of the first relocation
    data = bytearray(out.read_bytes())
    data[at] ^= 0x01
    bad = tmp_path / "bad.ko"
    bad.write_bytes(bytes(data))
    with pytest.raises(KasaliasError, match="relocations in .rela.text changed"):
        check_output(src, str(bad), new, "objcopy")


def elf_layout(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Symbols in .symtab order and section headers, with what differs legitimately
    between two writers left out (string table offsets, file offsets)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        syms = [(s.name, s["st_value"], s["st_size"], s["st_info"]["type"], s["st_info"]["bind"],
                 s["st_other"]["visibility"], s["st_shndx"]) for s in elf.get_section_by_name(".symtab").iter_symbols()]
        secs = [(s.name, s["sh_type"], s["sh_flags"], s["sh_addr"], s["sh_size"] if s.name != ".strtab" else None,
                 s["sh_link"], s["sh_info"], s["sh_addralign"], s["sh_entsize"]) for s in elf.iter_sections()]
    return syms, secs


@pytest.mark.parametrize("dwarf", ["4", "5"])
def test_own_writer_writes_what_objcopy_writes(dwarf: str, build4: Build, build5: Build, analysis4: Path,
                                               analysis5: Path, tmp_path: Path) -> None:
    """kasalias' own writer against binutils objcopy --add-symbol (plus the size kasalias
    sets), module by module: the same symbols in the same order, the same relocations by
    symbol name, the same section headers and bytes; only .strtab's order differs."""
    build, analysis = (build4, analysis4) if dwarf == "4" else (build5, analysis5)
    table = AliasTable.read(analysis / "modules.symalias")
    compared = 0
    for ko in sorted(build.objtree.rglob("*.ko")):
        own, oc = tmp_path / f"{ko.stem}.own", tmp_path / f"{ko.stem}.objcopy"
        run_kasalias("module", "--aliases", analysis / "modules.symalias", ko, own)
        run_kasalias("module", "--aliases", analysis / "modules.symalias", "--objcopy", "objcopy", ko, oc)
        assert elf_layout(own) == elf_layout(oc), ko
        assert relocations(own) == relocations(oc) == relocations(ko), ko
        assert section_bytes(own) == section_bytes(oc) == section_bytes(ko), ko
        compared += bool(table.for_image(ko.stem.replace("-", "_")))
    assert compared >= 4  # modules with aliases among them (minix, hello, rpmsg_char, kobject examples)


def test_global_entries_lane_test_matches_a_plain_loop() -> None:
    """The byte-lane test that finds relocations naming globals, against the obvious loop."""
    import random
    import struct

    from kasalias.modwriter import _global_entries

    rnd = random.Random(7)
    for first_global in (1, 2, 255, 256, 257, 511, 4096, 65535, 65536, 70000):
        for n in (0, 1, 7, 300):
            pool = [0, 1, first_global - 1, first_global, first_global + 1, first_global + 255, first_global + 256]
            values = [min(max(rnd.choice(pool + [rnd.randrange(0, 2 * first_global + 2)]), 0), 2**32 - 1)
                      for _ in range(n)]
            column = memoryview(struct.pack(f"<{n}I", *values)).cast("I") if n else memoryview(b"").cast("I")
            assert _global_entries(column, first_global) == [i for i, v in enumerate(values) if v >= first_global], \
                (first_global, values)


def test_many_sections_use_symtab_shndx(tmp_path: Path) -> None:
    """An object with more than 0xff00 sections: aliases in a section beyond SHN_LORESERVE
    get SHN_XINDEX and a .symtab_shndx entry, as objcopy writes them."""
    from kasalias.aliastable import AliasRow
    from kasalias.symbols import ElfImage

    asm = tmp_path / "many.s"
    lines = [f'.section .t{i},"ax"\n' for i in range(0xFF10)]
    lines += ['.file "many.c"\n', '.section .tlast,"ax"\n', ".type f, @function\n", "f: ret\n", ".size f, 1\n",
              ".globl g\n", ".type g, @function\n", "g: ret\n", ".size g, 1\n"]
    asm.write_text("".join(lines))
    obj = tmp_path / "many.ko"
    subprocess.run(["as", "-o", str(obj), str(asm)], check=True)
    table = AliasTable([AliasRow("many", "many.c", 0, "f", 0, "f@many_c_1", "many.c:1", "many.c"),
                        AliasRow("many", "", 0, "g", 0, "g@many_c_2", "many.c:2", "many.c")], ["many"])
    table.write(tmp_path / "t.symalias")
    own, oc = tmp_path / "own.ko", tmp_path / "oc.ko"
    run_kasalias("module", "--aliases", tmp_path / "t.symalias", obj, own)
    run_kasalias("module", "--aliases", tmp_path / "t.symalias", "--objcopy", "objcopy", obj, oc)
    assert elf_layout(own) == elf_layout(oc)
    with ElfImage(own) as img:
        by_name = {s.name: s for s in img.symbols}
        assert by_name["f@many_c_1"].shndx == by_name["f"].shndx > 0xFF00
        assert by_name["g@many_c_2"].shndx == by_name["g"].shndx and by_name["g@many_c_2"].bind == 1


def test_output_check_catches_a_wrong_alias(build5: Build, analysis5: Path, tmp_path: Path) -> None:
    """The check reads back every alias of kasalias' own output: a moved one is refused."""
    from elftools.elf.elffile import ELFFile

    from kasalias.errors import KasaliasError
    from kasalias.modwriter import aliases_for_module, check_output
    from kasalias.symbols import ElfImage

    src_path, out = alias_module(build5, analysis5, "minix", tmp_path)
    src = ElfImage(src_path)
    new = aliases_for_module(src, AliasTable.read(analysis5 / "modules.symalias"), None, None, None)
    check_output(src, str(out), new, "kasalias")
    with open(out, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        index = next(i for i, s in enumerate(symtab.iter_symbols()) if s.name == new[0].alias)
        at = symtab["sh_offset"] + index * 24 + 8  # st_value
    data = bytearray(out.read_bytes())
    data[at] ^= 0x10
    bad = tmp_path / "bad.ko"
    bad.write_bytes(bytes(data))
    with pytest.raises(KasaliasError, match=f"alias {new[0].alias} missing or wrong"):
        check_output(src, str(bad), new, "kasalias")


@pytest.mark.parametrize("writer", ["kasalias", "objcopy"])
def test_alias_keeps_weak_binding(tmp_path: Path, writer: str) -> None:
    """A WEAK original (libnvdimm's security_show on Debian 6.1) gets a WEAK alias, a GLOBAL one
    a GLOBAL alias, a LOCAL one a LOCAL alias: each at its original's place, after it."""
    src = tmp_path / "weakmod.c"
    src.write_text("__attribute__((weak)) int security_show(void) { return 1; }\n"
                   "int type_show(void) { return 2; }\n"
                   "static int name_show(void) { return 3; }\n"
                   "int (*keep)(void) = name_show;\n")
    obj = tmp_path / "weakmod.ko"
    subprocess.run(["gcc", "-O2", "-c", "-o", str(obj), str(src)], check=True)
    from kasalias.aliastable import AliasRow
    rows = [AliasRow("weakmod", "", 0, "security_show", 0, "security_show@weakmod_c_1", "weakmod.c:1", "weakmod.c"),
            AliasRow("weakmod", "", 0, "type_show", 0, "type_show@weakmod_c_2", "weakmod.c:2", "weakmod.c"),
            AliasRow("weakmod", "weakmod.c", 0, "name_show", 0, "name_show@weakmod_c_3", "weakmod.c:3", "weakmod.c")]
    table = tmp_path / "modules.symalias"
    AliasTable(rows, ["weakmod"]).write(table)
    out = tmp_path / "weakmod.ko.aliased"
    run_kasalias("module", "--aliases", table, obj, out, *(["--objcopy", "objcopy"] if writer == "objcopy" else []))
    syms = {s["name"]: s for s in elf_symbols(out)}
    for line, name, bind in ((1, "security_show", "STB_WEAK"), (2, "type_show", "STB_GLOBAL"),
                             (3, "name_show", "STB_LOCAL")):
        o, a = syms[name], syms[f"{name}@weakmod_c_{line}"]
        assert o["bind"] == bind
        assert (a["section"], a["value"], a["size"], a["type"], a["bind"]) == \
            (o["section"], o["value"], o["size"], o["type"], bind)
        assert a["index"] > o["index"]
