"""The fast paths of symbol reading and filtering against straightforward versions of the same
rules: the combined mksysmap pattern, the symbol frequency file, symbol names that are not
ASCII, the DWARF walk's per-abbreviation skips."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from elfread import elf_symbols, nm_symbols
from kasalias import dwarfscan as ds
from kasalias.bre import bre_to_python, combined_pattern
from kasalias.kallsyms_rules import builtin_rules
from kasalias.symbfreq import SymbolFrequency, name_key
from kasalias.symbols import ElfImage

LETTERS = "aAbBCdDgGiINnprRsStTuUvVwW?"
NAMES = [
    "", "x", "foo", "_from_arm", "x_from_arm", "x_veneer", "a.long_branch.b", "L0", "L0x", "$x", "$d.1", ".Lfoo",
    "__pi_$x", "__pi_.Lx", "__kvm_nvhe_$a", "__ARMV7PILongThunk_x", "__Thunk_", "__fooThunk_", "__efistub_x",
    "__kcfi_typeid_f", "__crc_x", "__kstrtab_x", "__kstrtabns_x", "_SDA_BASE_", "_SDA2_BASE_", "a b", " x", "x ",
    "caf\u00e9", "\udcff", "x" * 511, "x" * 512, "\u00e9" * 256, "foo.llvm.123", "foo.llvm.x",
]


def plain_pattern(bres: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{bre_to_python(p)})" for p in bres), re.ASCII)


@pytest.mark.parametrize("bres", [
    builtin_rules((6, 12)).mksysmap,
    builtin_rules((6, 1)).mksysmap,
    # quantified, anchored, bracketed, escaped and alternated first characters: not factored
    (r" *x", r" \{2\}y", r" \+z", r"^0", r"\.L", r"[aN] ", r"a\|b", r" $", r"$", r"x", r" \(a\|b\)c", r"_x$",
     r"_\(y\)", r"_[0-9]*$", r" ^", r" \?q", r"*a", r"\(x\)"),
])
def test_combined_pattern_matches_the_same_lines(bres: tuple[str, ...]) -> None:
    combined = re.compile(combined_pattern(bres), re.ASCII)
    plain = plain_pattern(bres)
    lines = [f"{'0' * 16} {letter} {name}" for name in NAMES for letter in LETTERS]
    lines += ["", " ", "x", "0", "ab", "a", "b", "  ", " c", "_y", "_x", "^", " ^", "q", " q", "y"]
    assert [combined.search(line) is None for line in lines] == [plain.search(line) is None for line in lines]


def test_keeps_agrees_with_its_parts() -> None:
    for version in ((6, 1), (6, 12)):
        rules = builtin_rules(version)
        plain = plain_pattern(rules.mksysmap)
        for name in NAMES:
            for letter in LETTERS:
                ignored = (len(name.encode("utf-8", "surrogateescape")) >= rules.ksym_name_len
                           or name in rules.ignored_names
                           or bool(rules.ignored_prefixes) and name.startswith(rules.ignored_prefixes)
                           or bool(rules.ignored_suffixes) and name.endswith(rules.ignored_suffixes)
                           or any(sub in name for sub in rules.ignored_substrings)
                           or letter in rules.ignored_types
                           or letter in ("A", "a") and name not in rules.absolute_kept)
                assert rules.kallsyms_ignores(name, letter) is ignored, (version, name, letter)
                kept = plain.search(f"{'0' * 16} {letter} {name}") is None and not ignored
                assert rules.keeps(name, letter) is kept, (version, name, letter)


@pytest.mark.parametrize("names", [
    ["b", "a", "a.b", "a_b", "A", "a:b", "z" * 5, "foo.llvm.1", "foo"],
    ["b", "caf\u00e9", "cafe", "\udcff", "\udc80x", "\u00ff", "\uffff", "a"],  # not ASCII: bytewise order
])
def test_symbfreq_render_is_sorted_bytewise(names: list[str], tmp_path: Path) -> None:
    freq = SymbolFrequency()
    freq.add(names)
    freq.add(names[:3])
    items = sorted((n.encode("utf-8", "surrogateescape"), c) for n, c in freq.counts.items())
    assert freq.render() == b"".join(b"%s:%d\n" % (n, c) for n, c in items)
    path = tmp_path / "modules.symbfreq"
    freq.write(path)
    assert SymbolFrequency.read(path).counts == freq.counts


def test_name_key() -> None:
    assert name_key("foo.llvm.123") == "foo"
    assert name_key("foo.llvm.x") == "foo.llvm.x"
    assert name_key("foo.llvm.1.llvm.2") == "foo.llvm.1"
    assert name_key("foo") == "foo"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_symbols_with_names_that_are_not_ascii(tmp_path: Path) -> None:
    src = tmp_path / "u.c"
    src.write_text("int caf\u00e9 = 1;\nstatic int na\u00efve(void) { return 2; }\n"
                   "int (*use)(void) = na\u00efve;\nint plain(void) { return caf\u00e9; }\n", encoding="utf-8")
    obj = tmp_path / "u.o"
    subprocess.run(["gcc", "-c", "-O1", "-o", str(obj), str(src)], check=True)
    with ElfImage(obj) as img:
        syms = img.symbols
        groups = img.file_groups()
    with ElfImage(obj) as img:
        assert img.symbols_at(s.index for s in syms) == syms  # decoded alone, from bytes
    assert Counter((s.value, s.letter, s.name) for s in syms if s.name) == Counter(nm_symbols(obj))
    assert {"caf\u00e9", "na\u00efve", "plain"} <= {s.name for s in syms}
    ref = [e for e in elf_symbols(obj) if e["index"] != 0 and e["type"] not in ("STT_FILE", "STT_SECTION")]
    assert [(s.index, s.name, s.value, s.size) for s in syms] == [
        (e["index"], e["name"], e["value"], e["size"]) for e in ref]
    assert groups == ["u.c"]


def _abbrev(tag: int, children: bool, attrs: list[tuple[int, int]]) -> ds.Abbrev:
    body = bytes([tag, int(children)]) + b"".join(bytes(a) for a in attrs) + b"\0\0"
    return ds._decode_abbrev(body, 4, 8, 5)


def test_hop_only_where_the_walk_skips_at_any_depth() -> None:
    sib, name, typ = (ds.AT_SIBLING, ds.F_REF4), (ds.AT_NAME, ds.F_STRP), (0x49, ds.F_REF4)
    # a childless type: its fixed size
    assert _abbrev(0x16, False, [name, typ]).hop == 8
    # a type with children and a DW_AT_sibling after a fixed-size name: jumped over
    assert _abbrev(0x13, True, [name, sib]).hop == -5
    # variable size, no sibling, a 1-byte sibling: decided by the walk
    assert _abbrev(0x16, False, [(ds.AT_NAME, ds.F_STRING)]).hop is None
    assert _abbrev(0x13, True, [name]).hop is None
    assert _abbrev(0x13, True, [(ds.AT_SIBLING, ds.F_REF1)]).hop is None
    # subprograms and variables are looked at by name; scopes hold function-local statics
    assert _abbrev(ds.TAG_VARIABLE, False, [name, typ]).hop is None
    assert _abbrev(ds.TAG_SUBPROGRAM, True, [sib, name]).hop is None
    assert _abbrev(ds.TAG_LEXICAL_BLOCK, True, [sib]).hop is None
    assert _abbrev(ds.TAG_INLINED_SUBROUTINE, True, [sib]).hop is None
