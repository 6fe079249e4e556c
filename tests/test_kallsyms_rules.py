"""Tests of kasalias.kallsyms_rules, kallsyms_tree, bre and loader_rules: which symbols kallsyms
keeps (6.1, 6.12, 7.2, 7.3).

The tests marked ``realkernel`` use Debian's packages in the cache
(``$KASALIAS_CACHE``, default /var/cache/kasalias): linux-source-6.1 and
linux-source-6.12 .debs in debs/ (or trees in src/), and the debug kernel
unpacked by tools/fetch-debian-dbg in dbg/.  They are skipped when the files
are not there.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kasalias.bre import bre_to_python
from kasalias.errors import KasaliasError
from kasalias.kallsyms_rules import VmlinuxRules, builtin_rules, parse_nm_line, select_nm_lines
from kasalias.kallsyms_tree import rules_from_tree
from kasalias.loader_rules import module_init_layout_section, module_keeps, module_lookup_ignores
from kasalias.symbols import SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHN_ABS, SHN_COMMON, SHN_UNDEF, SHN_XINDEX

CACHE = Path(os.environ.get("KASALIAS_CACHE", "/var/cache/kasalias"))
ROOT = Path(__file__).resolve().parent.parent

R61 = builtin_rules((6, 1))
R612 = builtin_rules((6, 12))

# ---------------------------------------------------------------------------
# Table tests of names and letters

# (name, letter, kept by 6.1, kept by 6.12)
NAME_TABLE: list[tuple[str, str, bool, bool]] = [
    ("foo", "t", True, True),
    ("foo", "T", True, True),
    ("foo", "d", True, True),
    ("foo", "D", True, True),
    ("foo", "r", True, True),
    ("foo", "b", True, True),
    ("foo", "W", True, True),
    ("foo", "V", True, True),
    ("foo", "v", True, True),
    # x86 call padding and kCFI preambles are ordinary kallsyms symbols
    ("__pfx_foo", "t", True, True),
    ("__pfx_foo", "T", True, True),
    ("__cfi_foo", "t", True, True),
    # compiler-generated names are kept
    ("__UNIQUE_ID_ddebug123", "d", True, True),
    ("__func__.12", "r", True, True),
    ("__key.7", "b", True, True),
    ("CSWTCH.55", "r", True, True),
    ("foo.isra.0", "t", True, True),
    ("foo.cold", "t", True, True),
    ("foo.llvm.123456", "t", True, True),
    ("name_show@drivers_base_core_c_12", "t", True, True),
    # letters
    ("foo", "a", False, False),  # mksysmap
    ("foo", "A", False, False),  # kallsyms.c, absolute
    ("__gp", "A", True, True),  # a kept absolute symbol
    ("__kernel_sigtramp", "A", True, True),
    ("__gp", "a", False, False),  # but mksysmap drops lower-case a first
    ("foo", "N", False, False),
    ("foo", "n", False, False),
    ("foo", "U", False, False),
    ("foo", "u", False, False),
    ("foo", "w", False, False),
    # prefixes
    (".LC0", "r", False, False),
    (".L__unnamed_1", "r", False, False),
    ("$x", "t", False, False),
    ("$d.12", "d", False, False),
    ("__crc_printk", "A", False, False),
    ("__crc_printk", "R", False, False),
    ("__kstrtab_printk", "r", False, False),
    ("__kstrtabns_printk", "r", False, False),
    ("__kcfi_typeid_foo", "A", False, False),
    ("__kcfi_typeid_foo", "t", False, False),
    ("__efistub_memcpy", "t", False, False),
    ("__kvm_nvhe_$x", "t", False, False),
    ("__kvm_nvhe_.Lfoo", "t", False, False),
    ("__kvm_nvhe_foo", "t", True, True),
    ("__AArch64ADRPThunk_foo", "t", False, False),
    ("__LA25Thunk_foo", "t", False, False),
    # 6.12's sed [[:alnum:]]*Thunk_ is wider than 6.1's list
    ("__X86Thunk_foo", "t", True, False),
    ("__pi_$x", "t", True, False),
    ("__pi_.Lfoo", "t", True, False),
    ("__pi___kcfi_typeid_foo", "t", True, False),
    ("__pi_foo", "t", True, True),
    # suffixes and exact names
    ("foo_veneer", "t", False, False),
    ("foo_from_arm", "t", False, False),
    ("foo_from_thumb", "t", False, False),
    ("foo_veneer_x", "t", True, True),
    ("L0", "t", False, False),
    ("L0x", "t", True, True),
    ("_SDA_BASE_", "d", False, False),
    ("_SDA2_BASE_", "d", False, False),
    # substrings
    ("foo.long_branch.bar", "t", False, False),
    ("foo.plt_branch.bar", "t", False, False),
    # kallsyms' own tables: dropped by 6.1, kept by 6.12 (pass 0 has them)
    ("kallsyms_names", "R", False, True),
    ("kallsyms_num_syms", "R", False, True),
    ("kallsyms_seqs_of_names", "R", False, True),
    ("kallsyms_lookup_name", "T", True, True),
    # length: KSYM_NAME_LEN is 512 bytes with the terminating NUL
    ("x" * 511, "t", True, True),
    ("x" * 512, "t", False, False),
]


@pytest.mark.parametrize("name,letter,keep61,keep612", NAME_TABLE)
def test_keeps_table(name: str, letter: str, keep61: bool, keep612: bool) -> None:
    assert R61.keeps(name, letter) is keep61
    assert R612.keeps(name, letter) is keep612


def test_mksysmap_vs_kallsyms_split() -> None:
    # absolute symbols reach System.map but not kallsyms
    assert R612.mksysmap_keeps("phys_startup_64", "A")
    assert R612.kallsyms_ignores("phys_startup_64", "A")
    assert not R612.keeps("phys_startup_64", "A")
    # 6.1: __kcfi_typeid_ and _SDA_BASE_ are in System.map, dropped by kallsyms.c
    assert R61.mksysmap_keeps("__kcfi_typeid_foo", "A")
    assert R61.mksysmap_keeps("_SDA_BASE_", "d")
    assert R61.kallsyms_ignores("_SDA_BASE_", "d")
    # 6.12: mksysmap drops them already
    assert not R612.mksysmap_keeps("_SDA_BASE_", "d")


def test_filter_nm_lines_keeps_lines_as_given() -> None:
    lines = [
        "ffffffff81000000 T _stext\n",
        "                 U missing\n",
        "ffffffff81000010 t .Ltmp0\n",
        "ffffffff81000020 t __pfx_foo\n",
        "ffffffff81000030 t foo\n",
        "0000000000000000 a core.c\n",
    ]
    assert list(R612.filter_nm_lines(lines)) == [lines[0], lines[3], lines[4]]
    assert list(R61.filter_nm_lines(lines)) == [lines[0], lines[3], lines[4]]


def test_builtin_versions() -> None:
    assert builtin_rules((6, 1)).version == (6, 1)
    assert builtin_rules((6, 12)).version == (6, 12)
    assert builtin_rules((5, 15)).version == (6, 1)
    assert builtin_rules((6, 3)).version == (6, 1)
    assert builtin_rules((6, 4)).version == (6, 12)
    assert builtin_rules((6, 6)).version == (6, 12)
    assert builtin_rules((6, 18)).version == (6, 12)
    assert builtin_rules((7, 0)).version == (7, 3)
    assert builtin_rules((7, 2)).version == (7, 2)
    assert builtin_rules((7, 3)).version == (7, 3)


# ---------------------------------------------------------------------------
# Address rules (symbol_valid)


def _syms() -> list[tuple[int, str, str]]:
    return [
        (0x1000, "T", "_text"),
        (0x1000, "T", "_stext"),
        (0x1010, "t", "foo"),
        (0x1020, "T", "_etext"),
        (0x1020, "t", "after_etext_same_addr"),
        (0x2000, "D", "__start___tracepoints"),
        (0x2008, "D", "__stop___tracepoints"),
        (0x2010, "d", "some_data"),
        (0x3000, "T", "_sinittext"),
        (0x3010, "t", "init_fn"),
        (0x3020, "T", "_einittext"),
        (0x4000, "A", "abs_sym"),
        (0x4010, "t", ".Lx"),
    ]


def test_select_all_symbols() -> None:
    names = [n for _a, _l, n in R612.select(_syms(), all_symbols=True)]
    assert names == [
        "_text", "_stext", "foo", "_etext", "after_etext_same_addr",
        "__start___tracepoints", "__stop___tracepoints", "some_data",
        "_sinittext", "init_fn", "_einittext",
    ]


def test_select_text_only_612() -> None:
    names = [n for _a, _l, n in R612.select(_syms(), all_symbols=False)]
    assert names == [
        "_text", "_stext", "foo", "_etext",
        "__start___tracepoints", "__stop___tracepoints",
        "_sinittext", "init_fn", "_einittext",
    ]


def test_select_text_only_61_has_no_start_stop_rule() -> None:
    names = [n for _a, _l, n in R61.select(_syms(), all_symbols=False)]
    assert names == ["_text", "_stext", "foo", "_etext", "_sinittext", "init_fn", "_einittext"]


def test_select_nm_lines_and_parse() -> None:
    assert parse_nm_line("ffffffff81000000 T _stext\n") == (0xFFFFFFFF81000000, "T", "_stext")
    assert parse_nm_line("                 U foo") is None
    lines = [f"{a:016x} {l} {n}\n" for a, l, n in _syms()] + ["                 U undef\n"]
    assert select_nm_lines(R612, lines, all_symbols=False) == R612.select(_syms(), all_symbols=False)
    assert select_nm_lines(R61, lines) == R61.select(_syms())


# ---------------------------------------------------------------------------
# BRE translation


@pytest.mark.parametrize(
    "bre,text,matches",
    [
        (r" [aNUw] ", "0 a x", True),
        (r" [aNUw] ", "0 t x", False),
        (r" \$", "0 t $x", True),
        (r" \.L", "0 t .Lfoo", True),
        (r" \.L", "0 t xLfoo", False),
        (r" __[[:alnum:]]*Thunk_", "0 t __AArch64ADRPThunk_x", True),
        (r" __[[:alnum:]]*Thunk_", "0 t __Thunk_x", True),
        (r" __[[:alnum:]]*Thunk_", "0 t __a_Thunk_x", False),
        (r"_veneer$", "0 t a_veneer", True),
        (r"_veneer$", "0 t a_veneer_", False),
        (r"a$b", "a$b", True),  # '$' not at the end is literal
        (r"^a", "ab", True),
        (r"^a", "ba", False),
        (r"b^", "ab^", True),
        (r"*a", "*a", True),  # leading '*' is literal
        (r"a*b", "aaab", True),
        (r"a\{2\}b", "aab", True),
        (r"a\{2\}b", "ab", False),
        (r"\(ab\)*c", "ababc", True),
        (r"x\|y", "y", True),
        (r"a+b", "a+b", True),  # '+' is literal in a BRE
        (r"a\+b", "aab", True),
        (r"a?b", "a?b", True),
        (r"a{1}", "a{1}", True),
        (r"[]a]", "]", True),
        (r"[^]a]", "a", False),
        (r"[a-c]", "b", True),
        (r"[\]", "\\", True),  # backslash is literal in brackets
        (r"\.long_branch\.", "x.long_branch.y", True),
    ],
)
def test_bre_to_python(bre: str, text: str, matches: bool) -> None:
    assert (re.search(bre_to_python(bre), text, re.ASCII) is not None) is matches


@pytest.mark.parametrize("bre", [r"\(a\)\1", r"[[=a=]]", r"[a", r"\(a", r"a\)", "a\\", r"\q"])
def test_bre_untranslatable(bre: str) -> None:
    with pytest.raises(KasaliasError):
        bre_to_python(bre)


# ---------------------------------------------------------------------------
# rules_from_tree on small synthetic trees

_KALLSYMS_C_612 = r"""
#define KSYM_NAME_LEN		512
static bool is_ignored_symbol(const char *name, char type)
{
	if (type == 'u' || type == 'n')
		return true;

	if (toupper(type) == 'A') {
		/* Keep these useful absolute symbols */
		if (strcmp(name, "__kernel_syscall_via_break") &&
		    strcmp(name, "__kernel_syscall_via_epc") &&
		    strcmp(name, "__kernel_sigtramp") &&
		    strcmp(name, "__gp"))
			return true;
	}

	return false;
}

static int symbol_valid(const struct sym_entry *s)
{
	const char *name = sym_name(s);

	if (!all_symbols) {
		/* "__start_" in a comment is ignored */
		if (string_starts_with(name, "__start_") ||
		    string_starts_with(name, "__stop_"))
			return 1;

		if (symbol_in_range(s, text_ranges,
				    ARRAY_SIZE(text_ranges)) == 0)
			return 0;
		if ((s->addr == text_range_text->end &&
		     strcmp(name, text_range_text->end_sym)) ||
		    (s->addr == text_range_inittext->end &&
		     strcmp(name, text_range_inittext->end_sym)))
			return 0;
	}

	return 1;
}
"""

_MKSYSMAP_SED = """#!/bin/sed -f
# comment
/ [aNUw] /d

# local labels
/ \\.L/d
/ __[[:alnum:]]*Thunk_/d
/_veneer$/d
"""

_MKSYSMAP_SH = """#!/bin/sh -x
# Usage
# mksysmap vmlinux System.map

$NM -n $1 | grep -v		\\
	-e ' [aNUw] '		\\
	-e ' \\$'		\\
	-e ' L0$'		\\
> $2
"""


def _tree(tmp_path: Path, mksysmap: str, kallsyms_c: str = _KALLSYMS_C_612, patchlevel: int = 12) -> Path:
    (tmp_path / "scripts").mkdir(parents=True, exist_ok=True)
    (tmp_path / "Makefile").write_text(
        f"# SPDX\nVERSION = 6\nPATCHLEVEL = {patchlevel}\nSUBLEVEL = 0\nEXTRAVERSION =\n"
    )
    (tmp_path / "scripts" / "mksysmap").write_text(mksysmap)
    (tmp_path / "scripts" / "kallsyms.c").write_text(kallsyms_c)
    return tmp_path


def test_rules_from_tree_sed_form(tmp_path: Path) -> None:
    rules = rules_from_tree(_tree(tmp_path, _MKSYSMAP_SED))
    assert rules.version == (6, 12)
    assert rules.mksysmap == (r" [aNUw] ", r" \.L", r" __[[:alnum:]]*Thunk_", r"_veneer$")
    assert rules.ignored_types == frozenset("un")
    assert rules.always_valid_prefixes == ("__start_", "__stop_")
    assert rules.absolute_kept == frozenset(
        {"__kernel_syscall_via_break", "__kernel_syscall_via_epc", "__kernel_sigtramp", "__gp"}
    )
    assert not rules.keeps(".Lfoo", "t")
    assert not rules.keeps("__ARMV7PILongThunk_x", "t")
    assert rules.keeps("$x", "t")  # not in this small script
    assert rules.origin == str(tmp_path)


def test_rules_from_tree_grep_form(tmp_path: Path) -> None:
    rules = rules_from_tree(_tree(tmp_path, _MKSYSMAP_SH, patchlevel=1))
    assert rules.version == (6, 1)
    assert rules.mksysmap == (r" [aNUw] ", r" \$", r" L0$")
    assert not rules.keeps("$x", "t")
    assert not rules.keeps("L0", "t")


def test_rules_from_tree_old_single_grep_pattern(tmp_path: Path) -> None:
    sh = "#!/bin/sh\n$NM -n $1 | grep -v '\\( [aNUw] \\)\\|\\(__crc_\\)\\|\\( \\$[adt]\\)\\|\\( \\.L\\)' > $2\n"
    rules = rules_from_tree(_tree(tmp_path, sh, patchlevel=1))
    assert not rules.keeps("__crc_foo", "A")
    assert not rules.keeps("$d", "d")
    assert rules.keeps("$y", "d")
    assert rules.keeps("foo", "t")


@pytest.mark.parametrize(
    "mksysmap",
    [
        "#!/bin/sed -f\ns/ foo/ bar/\n",  # a substitution
        "#!/bin/sed -f\n/foo/p\n",  # another command
        "#!/bin/sed -f\n/foo/Id\n",  # a flag
        "#!/bin/sed -f\n/\\(a\\)\\1/d\n",  # a back-reference
        "#!/bin/sed -f\n# nothing\n",
        "#!/bin/sh\n$NM -n $1 | grep -v -e ' a ' | sed 's/x/y/' > $2\n",
        '#!/bin/sh\n$NM -n $1 | grep -v -e " \\$" > $2\n',  # double quotes
        "#!/bin/sh\n$NM -n $1 | grep -vi -e ' a ' > $2\n",
        "#!/usr/bin/awk -f\n{ print }\n",
    ],
)
def test_rules_from_tree_untranslatable_mksysmap(tmp_path: Path, mksysmap: str) -> None:
    with pytest.raises(KasaliasError):
        rules_from_tree(_tree(tmp_path, mksysmap))


def test_rules_from_tree_untranslatable_kallsyms_c(tmp_path: Path) -> None:
    odd = _KALLSYMS_C_612.replace("\treturn false;\n}", '\tif (strstr(name, "x")) return true;\n\treturn false;\n}', 1)
    with pytest.raises(KasaliasError, match="is_ignored_symbol"):
        rules_from_tree(_tree(tmp_path, _MKSYSMAP_SED, odd))
    odd2 = _KALLSYMS_C_612.replace("return 1;\n\n\t\tif", 'return 1;\n\t\tif (strstr(name, ".cold")) return 0;\n\t\tif', 1)
    with pytest.raises(KasaliasError, match="symbol_valid"):
        rules_from_tree(_tree(tmp_path, _MKSYSMAP_SED, odd2))


def test_rules_from_tree_missing_files(tmp_path: Path) -> None:
    with pytest.raises(KasaliasError):
        rules_from_tree(tmp_path)
    _tree(tmp_path, _MKSYSMAP_SED)
    (tmp_path / "Makefile").write_text("all:\n")
    with pytest.raises(KasaliasError, match="VERSION"):
        rules_from_tree(tmp_path)


def test_rules_equal_regardless_of_origin() -> None:
    a = VmlinuxRules(version=(6, 12), mksysmap=(" x",), origin="a")
    b = VmlinuxRules(version=(6, 12), mksysmap=(" x",), origin="b")
    assert a == b and hash(a) == hash(b)


# ---------------------------------------------------------------------------
# Modules

SHNUM = 40
TEXT = SHF_ALLOC | SHF_EXECINSTR
DATA = SHF_ALLOC | SHF_WRITE
RODATA = SHF_ALLOC

STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE = 0, 1, 2, 3, 4

# (name, st_type, st_shndx, section name, flags, kept with KALLSYMS_ALL, kept without)
MODULE_TABLE: list[tuple[str, int, int, str, int, bool, bool]] = [
    ("foo", STT_FUNC, 2, ".text", TEXT, True, True),
    ("__pfx_foo", STT_FUNC, 2, ".text", TEXT, True, True),
    ("foo.cold", STT_FUNC, 3, ".text.unlikely", TEXT, True, True),
    ("my_data", STT_OBJECT, 5, ".data", DATA, True, False),
    ("__func__.0", STT_OBJECT, 6, ".rodata", RODATA, True, False),
    ("__key.1", STT_OBJECT, 7, ".bss", DATA, True, False),
    ("ro_after", STT_OBJECT, 8, ".data..ro_after_init", DATA, True, False),
    ("__build_id", STT_NOTYPE, 9, ".note.gnu.build-id", RODATA, True, False),
    ("__this_module", STT_OBJECT, 10, ".gnu.linkonce.this_module", DATA, True, False),
    # init sections are freed after init
    ("init_module", STT_FUNC, 11, ".init.text", TEXT, False, False),
    ("__initdata_x", STT_OBJECT, 12, ".init.data", DATA, False, False),
    ("__setup_str_x", STT_OBJECT, 13, ".init.rodata", RODATA, False, False),
    # .exit.text stays with CONFIG_MODULE_UNLOAD
    ("cleanup_module", STT_FUNC, 14, ".exit.text", TEXT, True, True),
    # the loader drops SHF_ALLOC from .modinfo and __versions
    ("__UNIQUE_ID_license123", STT_OBJECT, 15, ".modinfo", RODATA, False, False),
    ("____versions", STT_OBJECT, 16, "__versions", RODATA, False, False),
    # percpu: kept only with KALLSYMS_ALL (the loader clears its SHF_ALLOC)
    ("my_pcpu", STT_OBJECT, 17, ".data..percpu", DATA, True, False),
    # non-allocated sections
    ("dbg", STT_NOTYPE, 18, ".debug_info", 0, False, False),
    ("cmt", STT_NOTYPE, 19, ".comment", 0, False, False),
    # mapping-like names are listed (only address lookups skip them)
    ("$x", STT_NOTYPE, 2, ".text", TEXT, True, True),
    (".Ltmp1", STT_NOTYPE, 2, ".text", TEXT, True, True),
    ("__UNIQUE_ID_ddebug4", STT_OBJECT, 20, "__dyndbg", DATA, True, False),
    # never
    ("", STT_SECTION, 2, ".text", TEXT, False, False),
    ("printk", STT_NOTYPE, SHN_UNDEF, "", 0, False, False),
    ("hello.c", STT_FILE, SHN_ABS, "", 0, False, False),
    ("abs", STT_NOTYPE, SHN_ABS, "", 0, False, False),
    ("common", STT_OBJECT, SHN_COMMON, "", 0, False, False),
    ("xindex", STT_OBJECT, SHN_XINDEX, "", 0, False, False),
    ("bad", STT_OBJECT, SHNUM, "", 0, False, False),
]


@pytest.mark.parametrize("name,st_type,shndx,secname,flags,keep_all,keep_text", MODULE_TABLE)
def test_module_keeps_table(
    name: str, st_type: int, shndx: int, secname: str, flags: int, keep_all: bool, keep_text: bool
) -> None:
    assert module_keeps(name, st_type, shndx, secname, flags, SHNUM) is keep_all
    assert module_keeps(name, st_type, shndx, secname, flags, SHNUM, kallsyms_all=False) is keep_text


def test_module_keeps_options() -> None:
    # without CONFIG_MODULE_UNLOAD .exit.* is laid out as init
    assert not module_keeps("cleanup_module", STT_FUNC, 14, ".exit.text", TEXT, SHNUM, module_unload=False)
    # !SMP: no percpu section index; .data..percpu is ordinary data
    assert module_keeps("my_pcpu", STT_OBJECT, 17, ".data..percpu", DATA, SHNUM, smp=False)
    assert not module_keeps("my_pcpu", STT_OBJECT, 17, ".data..percpu", DATA, SHNUM, False, smp=False)
    # livepatch modules keep the whole symtab, undefined symbols too
    assert module_keeps("printk", STT_NOTYPE, SHN_UNDEF, "", 0, SHNUM, livepatch=True)
    assert module_keeps("init_module", STT_FUNC, 11, ".init.text", TEXT, SHNUM, livepatch=True)
    assert not module_keeps("", STT_SECTION, 2, ".text", TEXT, SHNUM, livepatch=True)
    # ARM's extra init sections
    assert module_init_layout_section(".ARM.exidx.init.text", arch="arm")
    assert not module_init_layout_section(".ARM.exidx.init.text")
    assert module_init_layout_section(".init.text")
    assert not module_init_layout_section(".exit.text")
    assert module_init_layout_section(".exit.text", module_unload=False)


@pytest.mark.parametrize(
    "name,ign612,ign61",
    [
        ("foo", False, False),
        ("", True, True),
        ("$x", True, True),
        ("$d.1", True, True),
        ("$xyz", True, False),
        ("$q", True, False),
        (".Ltmp", True, True),
        ("L0foo", True, False),
    ],
)
def test_module_lookup_ignores(name: str, ign612: bool, ign61: bool) -> None:
    assert module_lookup_ignores(name, (6, 12)) is ign612
    assert module_lookup_ignores(name, (6, 1)) is ign61


# ---------------------------------------------------------------------------
# The real Debian files (skipped when the cache lacks them)

_TREE_FILES = ("Makefile", "scripts/mksysmap", "scripts/kallsyms.c", "scripts/include/xalloc.h")


def _source_tree(version: str, tmp_factory: pytest.TempPathFactory) -> Path:
    pkg = f"linux-source-{version}"
    full = CACHE / "src" / pkg
    if all((full / f).is_file() for f in _TREE_FILES[:3]):
        return full
    debs = sorted(glob.glob(str(CACHE / "debs" / f"{pkg}_*_all.deb")))
    if not debs:  # a first run: fetched (and unpacked) as the end-to-end tests would
        out = subprocess.run([str(ROOT / "tools" / "fetch-linux-source"), version], check=True,
                             capture_output=True, text=True).stdout
        return Path(out.split()[-1])
    for tool in ("dpkg-deb", "tar", "xz"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    dest = tmp_factory.mktemp(pkg)
    members = [f"{pkg}/{f}" for f in _TREE_FILES if version != "6.1" or "xalloc" not in f]
    cmd = (
        f"dpkg-deb --fsys-tarfile '{debs[-1]}' | tar -xO ./usr/src/{pkg}.tar.xz"
        f" | tar -xJf - -C '{dest}' " + " ".join(members)
    )
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    return dest / pkg


@pytest.fixture(scope="session")
def tree_6_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _source_tree("6.1", tmp_path_factory)


@pytest.fixture(scope="session")
def tree_6_12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _source_tree("6.12", tmp_path_factory)


@pytest.fixture(scope="session")
def dbg_vmlinux() -> Path:
    hits = sorted(
        glob.glob(str(CACHE / "dbg" / "linux-image-6.12.*-amd64-dbg_*" / "usr/lib/debug/boot/vmlinux-*"))
    )
    if not hits:  # a first run: the debug package test_realkernel.py uses, fetched now
        out = subprocess.run([str(ROOT / "tools" / "fetch-debian-dbg")], check=True, capture_output=True,
                             text=True).stdout
        hits = [line.split("=", 1)[1] for line in out.splitlines() if line.startswith("vmlinux=")]
    if shutil.which("nm") is None:
        pytest.skip("nm not installed")
    return Path(hits[-1])


@pytest.fixture(scope="session")
def nm_lines(dbg_vmlinux: Path) -> list[str]:
    out = subprocess.run(["nm", "-n", str(dbg_vmlinux)], check=True, stdout=subprocess.PIPE).stdout
    return out.decode("utf-8", "surrogateescape").splitlines(keepends=True)


def _probe_names(nm: list[str]) -> list[tuple[str, str]]:
    probes = [(n, l) for n, l, _a, _b in NAME_TABLE]
    for line in nm[::50]:
        p = parse_nm_line(line)
        if p:
            probes.append((p[2], p[1]))
    return probes


@pytest.mark.realkernel
@pytest.mark.parametrize("version", ["6.1", "6.12", "7.2", "7.3"])
def test_builtin_equals_real_tree(version: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    tree = _source_tree(version, tmp_path_factory)
    from_tree = rules_from_tree(tree)
    builtin = builtin_rules(from_tree.version)
    assert from_tree.version == tuple(int(x) for x in version.split("."))
    assert from_tree == builtin
    for name, letter in [(n, l) for n, l, _a, _b in NAME_TABLE]:
        assert from_tree.keeps(name, letter) == builtin.keeps(name, letter), (name, letter)


@pytest.mark.realkernel
def test_builtin_equals_real_tree_on_vmlinux_names(
    tree_6_1: Path, tree_6_12: Path, nm_lines: list[str]
) -> None:
    probes = _probe_names(nm_lines)
    for tree in (tree_6_1, tree_6_12):
        from_tree = rules_from_tree(tree)
        builtin = builtin_rules(from_tree.version)
        assert [from_tree.keeps(n, l) for n, l in probes] == [builtin.keeps(n, l) for n, l in probes]


@pytest.mark.realkernel
def test_filter_equals_real_sed_mksysmap(tree_6_12: Path, nm_lines: list[str], tmp_path: Path) -> None:
    if shutil.which("sed") is None:
        pytest.skip("sed not installed")
    nm_file = tmp_path / "nm.txt"
    nm_file.write_text("".join(nm_lines), encoding="utf-8", errors="surrogateescape")
    real = subprocess.run(
        ["sed", "-f", str(tree_6_12 / "scripts" / "mksysmap"), str(nm_file)],
        check=True,
        stdout=subprocess.PIPE,
        env=dict(os.environ, LC_ALL="C"),
    ).stdout.decode("utf-8", "surrogateescape")
    ours = "".join(builtin_rules((6, 12)).filter_nm_lines(nm_lines))
    assert ours == real
    assert len(ours.splitlines()) > 100000


@pytest.mark.realkernel
def test_filter_equals_real_grep_mksysmap_61(
    tree_6_1: Path, dbg_vmlinux: Path, nm_lines: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "System.map"
    subprocess.run(
        ["sh", str(tree_6_1 / "scripts" / "mksysmap"), str(dbg_vmlinux), str(out)],
        check=True,
        env=dict(os.environ, NM="nm", LC_ALL="C"),
        stderr=subprocess.DEVNULL,
    )
    real = out.read_text(encoding="utf-8", errors="surrogateescape")
    ours = "".join(builtin_rules((6, 1)).filter_nm_lines(nm_lines))
    assert ours == real


@pytest.mark.realkernel
def test_filter_equals_debian_system_map(dbg_vmlinux: Path, nm_lines: list[str]) -> None:
    maps = list(dbg_vmlinux.parent.glob("System.map-*"))
    if not maps:
        pytest.skip("no System.map in the debug package")
    real = maps[0].read_text(encoding="utf-8", errors="surrogateescape")
    assert "".join(builtin_rules((6, 12)).filter_nm_lines(nm_lines)) == real


def _compiled_kallsyms(tree: Path, tmp_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    exe = tmp_path / "kallsyms"
    cmd = ["gcc", "-O1", "-w", "-o", str(exe), str(tree / "scripts" / "kallsyms.c")]
    if (tree / "scripts" / "include").is_dir():
        cmd[1:1] = ["-I", str(tree / "scripts" / "include")]
    subprocess.run(cmd, check=True)
    return exe


def _num_syms(exe: Path, args: list[str], syms: Path) -> int:
    # 6.1's kallsyms fails late without --base-relative on x86-64; the count comes first
    res = subprocess.run([str(exe), *args, str(syms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    m = re.search(r"^kallsyms_num_syms:\n\s*\.long\s+(\d+)", res.stdout.decode(), re.M)
    assert m, "no kallsyms_num_syms in scripts/kallsyms output"
    return int(m.group(1))


@pytest.mark.realkernel
@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_select_count_equals_real_scripts_kallsyms(
    version: str, request: pytest.FixtureRequest, nm_lines: list[str], tmp_path: Path
) -> None:
    tree = request.getfixturevalue("tree_6_1" if version == "6.1" else "tree_6_12")
    exe = _compiled_kallsyms(tree, tmp_path)
    rules = rules_from_tree(tree)
    syms = tmp_path / "syms"
    syms.write_text("".join(rules.filter_nm_lines(nm_lines)), encoding="utf-8", errors="surrogateescape")
    for all_symbols in (True, False):
        args = ["--all-symbols"] if all_symbols else []
        expected = _num_syms(exe, args, syms)
        assert len(select_nm_lines(builtin_rules(rules.version), nm_lines, all_symbols)) == expected
