"""The Linux series kasalias knows, and everything kasalias reads that differs between them.

kasalias depends on a kernel's form in a few places, each of which changed upstream at some
release: the Kbuild lines its hooks anchor to (:mod:`kasalias.kbuild`), what modules.order
lists (:mod:`kasalias.analysis`, :mod:`kasalias.buildgen`), the rules of scripts/mksysmap and
scripts/kallsyms.c for vmlinux (:mod:`kasalias.kallsyms_rules`), those of the module loader
(:mod:`kasalias.loader_rules`) and the names MODULE_DEVICE_TABLE() makes
(:mod:`kasalias.policy`). Those modules take these facts from here and nowhere else. Each
entry of :data:`SERIES` cites the upstream changes that made it differ from the entry before
(``why``); facts common to every known series are module constants, cited where defined.

Teaching kasalias a new series is one entry, checked by tests/test_series.py: when nothing
kasalias reads changed, the newest entry with another version and what was checked,

    register(replace(SERIES[(7, 3)], version=(7, 4), why=("Linux 7.4: ... as in 7.3",)))

else also the fields that changed (an anchor line, a mksysmap list).

One rule for a series that is not registered:

* ``kasalias kbuild install`` hooks a registered series only (``--series X.Y``: a tree of any
  version with the hooks of registered X.Y); any other tree is refused, the message naming
  where the hooks of the version's :func:`stand_in` stop.
* An analysis without a kernel tree (``--kernel-version X.Y``; :data:`DEFAULT_SERIES` without
  it) uses the built-in kallsyms rules of the version's :func:`stand_in`.

Only data and small functions (dataclasses, re, pathlib): kbuild, policy, the rules and both
readers of modules.order import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from kasalias.errors import KasaliasError
from kasalias.fsutil import read_input

Version = tuple[int, int]

# ---------------------------------------------------------------------------
# Facts common to every known series

# scripts/kallsyms drops names of this many bytes or more, and kasalias makes no longer alias.
# Linux 6.1: "kallsyms: increase maximum kernel symbol length to 512" (it was 128).
KSYM_NAME_LEN = 512

# Twins the compiler or objtool put before a function, never named by tracers (policy.py) and
# outside their function's STT_FILE group (srcloc.py). "__cfi_": Linux 6.1, "x86: Add support
# for CONFIG_CFI_CLANG" (kCFI preambles); "__pfx_": Linux 6.2, "x86: Add prefix symbols for
# function padding" (CONFIG_CALL_PADDING).
PREFIX_TWINS = ("__pfx_", "__cfi_")

# The rules an analysis uses when it is given neither a tree with scripts/mksysmap nor
# --kernel-version: Debian 12's series, that of the -dbg packages 'report' and 'index' read most
# (tools/fetch-debian-dbg's default). Another default would change the output of such runs.
DEFAULT_SERIES: Version = (6, 12)


# ---------------------------------------------------------------------------
# One series


@dataclass(frozen=True)
class Kallsyms:
    """scripts/mksysmap and scripts/kallsyms.c of one series, as
    :func:`kasalias.kallsyms_tree.rules_from_tree` reads them from a tree;
    :class:`kasalias.kallsyms_rules.VmlinuxRules` is this with a version and an origin."""

    mksysmap: tuple[str, ...]  # POSIX BREs; an nm -n line matching one is dropped
    # scripts/kallsyms.c is_ignored_symbol(): name lists (6.1; empty from 6.4 on)
    ignored_names: frozenset[str] = frozenset()
    ignored_prefixes: tuple[str, ...] = ()
    ignored_suffixes: tuple[str, ...] = ()
    ignored_substrings: tuple[str, ...] = ()
    # is_ignored_symbol(): letters always dropped
    ignored_types: frozenset[str] = frozenset()
    # is_ignored_symbol(): A/a dropped unless the name is one of these
    absolute_kept: frozenset[str] = frozenset()
    # symbol_valid() without --all-symbols: prefixes kept whatever the address
    always_valid_prefixes: tuple[str, ...] = ()
    # read_symbol(): names of this many bytes or more are dropped
    ksym_name_len: int = KSYM_NAME_LEN


@dataclass(frozen=True)
class BtfHook:
    """One place where vmlinux's BTF takes kasalias' FUNCs (fentry/fexit on one copy): after
    pahole wrote it, before anything that sorts it or reads its ids. ``block`` names the text
    (kbuild.py): "object" runs 'kasalias btf' on the object file ``btf_vmlinux_bin_o`` names;
    "wait" (link-vmlinux.sh) waits for the analysis and exports KASALIAS_BTF for "raw", which
    runs it on scripts/gen-btf.sh's raw BTF ``btf1``."""

    file: str
    anchor: str
    where: str  # "before" or "after"
    block: str  # "object", "wait" or "raw"


@dataclass(frozen=True)
class Series:
    """What kasalias reads that differs between kernel series; everything else is common."""

    version: Version
    why: tuple[str, ...]  # the upstream changes that made it differ from the entry before
    # kbuild.py's hook points that differ (the block texts are kbuild.py's)
    modfinal_anchor: str  # the rule that makes every .ko (scripts/Makefile.modfinal)
    modfinal_kos: str  # the .ko files it names
    modinst_anchor: str  # the rule that installs a .ko (scripts/Makefile.modinst)
    headers_script: str  # the script that lists a headers package's files ...
    headers_anchor: str  # ... and its line the hook goes beside
    modules_order_suffix: str  # what modules.order lists for module X: ".ko" or ".o"
    kallsyms: Kallsyms  # the built-in rules of vmlinux's kallsyms
    # Sections whose SHF_ALLOC the module loader clears (kernel/module/main.c
    # rewrite_section_headers()): their symbols are not listed.
    loader_unallocated: tuple[str, ...]
    # What kernel/module/kallsyms.c find_kallsyms_symbol() skips in address lookups:
    # "arm" (is_arm_mapping_symbol()) or "generic" (include/linux/module_symbol.h
    # is_mapping_symbol()); see loader_rules.module_lookup_ignores.
    mapping_symbols: str
    device_table: str  # a regex of the names MODULE_DEVICE_TABLE() gives its table
    btf_hooks: tuple[BtfHook, ...]  # where vmlinux's BTF takes kasalias' FUNCs
    # The first version this entry stands for when that version is not registered
    # (stand_in()); None: its own.
    stands_for: Version | None = None

    @property
    def name(self) -> str:
        return version_text(self.version)


# ---------------------------------------------------------------------------
# The entries

# scripts/mksysmap of Linux 6.1 (Debian 6.1.192): grep -v -e arguments, in order.
_MKSYSMAP_6_1: tuple[str, ...] = (
    r" [aNUw] ",  # local absolute, debugging, undefined, local weak symbols
    r" \$",  # local symbols for ARM, MIPS, etc.
    r" \.L",  # local labels: .LBB, .Ltmpxxx, .L__unnamed_xx, .LASANPC
    r" __crc_",  # modversions
    r" __kstrtab_",  # EXPORT_SYMBOL (symbol name)
    r" __kstrtabns_",  # EXPORT_SYMBOL (namespace)
    r" L0$",  # LoongArch
)

# scripts/mksysmap of Linux 6.12 (Debian 6.12.117): sed /RE/d addresses, in order.
_MKSYSMAP_6_12: tuple[str, ...] = (
    r" [aNUw] ",  # local absolute, debugging, undefined, local weak symbols
    r" \$",  # local symbols for ARM, MIPS, etc.
    r" \.L",  # local labels: .LBB, .Ltmpxxx, .L__unnamed_xx, .LASANPC
    r" __efistub_",  # arm64 EFI stub namespace
    r" __pi_\$",  # arm64 local symbols in the PIE namespace
    r" __pi_\.L",
    r" __kvm_nvhe_\$",  # arm64 local symbols in the non-VHE KVM namespace
    r" __kvm_nvhe_\.L",
    r" __[[:alnum:]]*Thunk_",  # lld arm/aarch64/mips thunks
    r" __kcfi_typeid_",  # CFI type identifiers
    r" __kvm_nvhe___kcfi_typeid_",
    r" __pi___kcfi_typeid_",
    r" __crc_",  # modversions
    r" __kstrtab_",  # EXPORT_SYMBOL (symbol name)
    r" __kstrtabns_",  # EXPORT_SYMBOL (namespace)
    r"_from_arm$",  # arm veneers
    r"_from_thumb$",
    r"_veneer$",
    r" L0$",  # LoongArch
    r" _SDA_BASE_$",  # ppc small data bases (linker made, they vary between passes)
    r" _SDA2_BASE_$",
    r"\.long_branch\.",  # ppc stubs
    r"\.plt_branch\.",
)

# scripts/mksysmap of Linux 7.2 and 7.3 (Debian 7.2.13, 7.3.4): 6.12's and two more, in order.
_MKSYSMAP_7: tuple[str, ...] = (
    *_MKSYSMAP_6_12[:_MKSYSMAP_6_12.index(r" __kstrtabns_") + 1],
    r" __mod_device_table__",  # MODULE_DEVICE_TABLE() (symbol name)
    *_MKSYSMAP_6_12[_MKSYSMAP_6_12.index(r" __kstrtabns_") + 1:_MKSYSMAP_6_12.index(r"\.long_branch\.")],
    r" __UNIQUE_ID_modinfo_[0-9]*$",  # MODULE_INFO()
    *_MKSYSMAP_6_12[_MKSYSMAP_6_12.index(r"\.long_branch\."):],
)

# is_ignored_symbol(): absolute symbols kept (ia64's gate page, ppc's __gp): all known series.
_ABSOLUTE_KEPT = frozenset({"__kernel_syscall_via_break", "__kernel_syscall_via_epc", "__kernel_sigtramp", "__gp"})

_KALLSYMS_6_1 = Kallsyms(
    mksysmap=_MKSYSMAP_6_1,
    # is_ignored_symbol()'s lists; 6.4 moved them into mksysmap (6.12's entries above).
    ignored_names=frozenset({
        # made by scripts/kallsyms itself after the first pass: the passes' lists must be equal
        "kallsyms_addresses", "kallsyms_offsets", "kallsyms_relative_base", "kallsyms_num_syms",
        "kallsyms_names", "kallsyms_markers", "kallsyms_token_table", "kallsyms_token_index",
        "kallsyms_seqs_of_names",
        "_SDA_BASE_", "_SDA2_BASE_",  # ppc: linker made, they vary between passes
    }),
    ignored_prefixes=(
        "__efistub_",  # arm64 EFI stub namespace
        "__kvm_nvhe_$", "__kvm_nvhe_.L",  # arm64 local symbols in the non-VHE KVM namespace
        "__AArch64ADRPThunk_", "__ARMV5PILongThunk_", "__ARMV7PILongThunk_",  # lld arm64/arm thunks
        "__ThumbV7PILongThunk_", "__LA25Thunk_", "__microLA25Thunk_",  # lld arm/mips thunks
        "__kcfi_typeid_",  # CFI type identifiers
    ),
    ignored_suffixes=("_from_arm", "_from_thumb", "_veneer"),  # arm veneers
    ignored_substrings=(".long_branch.", ".plt_branch."),  # ppc stubs
    ignored_types=frozenset({"U", "u", "N", "n"}),  # undefined, debugging (6.4 on: u, n; mksysmap drops U, N)
    absolute_kept=_ABSOLUTE_KEPT,
    always_valid_prefixes=(),
)
_KALLSYMS_6_12 = Kallsyms(
    mksysmap=_MKSYSMAP_6_12,
    ignored_types=frozenset({"u", "n"}),
    absolute_kept=_ABSOLUTE_KEPT,
    # symbol_valid() without --all-symbols keeps section bounds wherever they are
    always_valid_prefixes=("__start_", "__stop_"),
)

_UNALLOCATED_6 = (".modinfo", "__versions")  # MODULE_INFO() strings, modversions' CRCs
_DEVICE_TABLE_6 = r"^__mod_\w+_device_table$"  # __mod_<type>__<name>_device_table

SERIES: dict[Version, Series] = {}


def register(series: Series) -> Series:
    """Add a series to :data:`SERIES` (kasalias then hooks, reads and analyses it); refused
    when its version is registered already or one of its facts is empty."""
    empty = [f.name for f in fields(series) if f.name != "stands_for" and not getattr(series, f.name)]
    if empty or not series.kallsyms.mksysmap:
        raise KasaliasError(f"Linux {series.name}: no {', '.join(empty or ['kallsyms.mksysmap'])}")
    if series.version in SERIES:
        raise KasaliasError(f"Linux {series.name} is registered already")
    if series.mapping_symbols not in ("arm", "generic"):
        raise KasaliasError(f"Linux {series.name}: mapping_symbols {series.mapping_symbols!r}: 'arm' or 'generic'")
    SERIES[series.version] = series
    return series


register(Series(
    version=(6, 1),
    why=("Linux 6.1 (Debian 6.1.192), the oldest series kasalias knows: scripts/mksysmap is a shell "
         "script ('$NM -n $1 | grep -v -e RE ...') and scripts/kallsyms.c is_ignored_symbol() holds the "
         "name lists and drops U/u and N/n; modules.order lists X.ko, Makefile.modfinal makes $(modules); "
         "scripts/package/builddeb lists the headers package's files",),
    modfinal_anchor="__modfinal: $(modules)",
    modfinal_kos="$(modules)",
    modinst_anchor="$(dst)/%.ko: $(extmod_prefix)%.ko FORCE",
    headers_script="scripts/package/builddeb",
    headers_anchor="find arch/$SRCARCH/include Module.symvers include scripts -type f",
    modules_order_suffix=".ko",
    kallsyms=_KALLSYMS_6_1,
    loader_unallocated=_UNALLOCATED_6,
    mapping_symbols="arm",
    device_table=_DEVICE_TABLE_6,
    # gen_btf() ends by making ${2}, the .btf.vmlinux.bin.o btf_vmlinux_bin_o names, an ET_REL
    btf_hooks=(BtfHook("scripts/link-vmlinux.sh",
                       'printf "${et_rel}" | dd of=${2} conv=notrunc bs=1 seek=16 status=none', "after", "object"),),
))
register(Series(
    version=(6, 12),
    why=("Linux 6.2: 'kbuild: change module.order to list *.o instead of *.ko': modules.order lists X.o, "
         "Makefile.modfinal makes $(modules:%.o=%.ko)",
         "Linux 6.2: find_kallsyms_symbol() skips include/linux/module_symbol.h is_mapping_symbol() "
         "names ('.L*', 'L0*', '$*') instead of ARM's mapping symbols",
         "Linux 6.4: 'scripts/mksysmap: use sed with in-line comments' and 'scripts/kallsyms: move "
         "compiler-generated symbol patterns to mksysmap': mksysmap is a sed script holding the name "
         "lists, is_ignored_symbol() drops u and n only",
         "between 6.1 and 6.12: symbol_valid() keeps __start_*/__stop_* without --all-symbols; headers "
         "packages list their files in scripts/package/install-extmod-build (builddeb's find line is gone)"),
    modfinal_anchor="__modfinal: $(modules:%.o=%.ko)",
    modfinal_kos="$(modules:%.o=%.ko)",
    modinst_anchor="$(dst)/%.ko: $(extmod_prefix)%.ko FORCE",
    headers_script="scripts/package/install-extmod-build",
    headers_anchor="echo Module.symvers",
    modules_order_suffix=".o",
    kallsyms=_KALLSYMS_6_12,
    loader_unallocated=_UNALLOCATED_6,
    mapping_symbols="generic",
    device_table=_DEVICE_TABLE_6,
    # gen_btf() (6.12: on .tmp_vmlinux1) ends by naming its object in btf_vmlinux_bin_o
    btf_hooks=(BtfHook("scripts/link-vmlinux.sh", "btf_vmlinux_bin_o=${btf_data}", "after", "object"),),
    stands_for=(6, 4),  # the kallsyms rules took 6.12's form in 6.4
))
_SERIES_7_2 = register(Series(
    version=(7, 2),
    why=("Linux 6.13: 'kbuild: change working directory to external module directory with M=': "
         "Makefile.modinst installs '$(dst)/%.ko: %.ko' ($(extmod_prefix) is gone)",
         "Linux 6.14: 'modules: Support extended MODVERSIONS info': the loader also clears SHF_ALLOC of "
         "__version_ext_crcs and __version_ext_names",
         "Linux 6.18, Alexey Gladkov's 'Add generated modalias to modules.builtin.modinfo' series: "
         "MODULE_DEVICE_TABLE() names its table __mod_device_table__*, MODULE_INFO() makes "
         "__UNIQUE_ID_modinfo_N, and scripts/mksysmap drops both (Debian 7.2.13)",
         "between 6.12 and 7.2: link-vmlinux.sh makes vmlinux's BTF with scripts/gen-btf.sh (2025), where "
         "pahole writes raw BTF that resolve_btfids then sorts (Debian 7.2.13)"),
    modfinal_anchor="__modfinal: $(modules:%.o=%.ko)",
    modfinal_kos="$(modules:%.o=%.ko)",
    modinst_anchor="$(dst)/%.ko: %.ko FORCE",
    headers_script="scripts/package/install-extmod-build",
    headers_anchor="echo Module.symvers",
    modules_order_suffix=".o",
    kallsyms=replace(_KALLSYMS_6_12, mksysmap=_MKSYSMAP_7),
    loader_unallocated=(*_UNALLOCATED_6, "__version_ext_crcs", "__version_ext_names"),
    mapping_symbols="generic",
    device_table=r"^__mod_device_table__",
    # scripts/gen-btf.sh (its own process) runs pahole into a raw ${btf1}, then resolve_btfids, which
    # sorts it (7.3 also deduplicates) and writes .BTF_ids: the FUNCs go in between
    btf_hooks=(BtfHook("scripts/link-vmlinux.sh",
                       "if ! ${CONFIG_SHELL} ${srctree}/scripts/gen-btf.sh .tmp_vmlinux1; then", "before", "wait"),
               BtfHook("scripts/gen-btf.sh", '"${ELF_FILE}"', "after", "raw")),
    # 7.x's rules stand for every 7.y, 6.12's for 6.13 to 6.19 (what the analysis always did;
    # tests/test_kallsyms_rules.py holds it), although 6.18 and 6.19 have 7.x's two mksysmap
    # lines: kasalias has read no tree between 6.12 and 7.2 (a registered 6.18 would be exact).
    stands_for=(7, 0),
))
register(replace(_SERIES_7_2, version=(7, 3), why=(
    "Linux 7.3 (Debian 7.3.4): as 7.2 at every point kasalias reads (hook anchors, mksysmap, "
    "kallsyms.c, modules.order, the loader)",)))


# ---------------------------------------------------------------------------
# Looking series up


def known() -> str:
    """The registered series, as messages name them: "6.1, 6.12, 7.2, 7.3"."""
    return ", ".join(version_text(v) for v in sorted(SERIES))


def stand_in(version: Version) -> Series:
    """The entry kasalias takes for ``version``: its own when registered; else, among the
    entries whose ``stands_for`` (their own version by default) is not after ``version``,
    the newest of those with the latest ``stands_for``; for a version older than all of
    them, the oldest entry. So 6.3 gets 6.1, 6.4 to 6.19 get 6.12, and 7.0 or 8.1 get 7.3."""
    if version in SERIES:
        return SERIES[version]
    before = [s for s in SERIES.values() if (s.stands_for or s.version) <= version]
    if not before:
        return SERIES[min(SERIES)]
    return max(before, key=lambda s: (s.stands_for or s.version, s.version))


def order_stem(line: str) -> str | None:
    """The module path a modules.order line names, without its suffix (X for X.ko or X.o,
    as the known series list it); None when it ends in neither."""
    for suffix in sorted({s.modules_order_suffix for s in SERIES.values()}, key=len, reverse=True):
        if line.endswith(suffix):
            return line[:-len(suffix)]
    return None


def loader_unallocated() -> frozenset[str]:
    """The sections whose SHF_ALLOC the loader clears, in any known series: a module does not
    say its series, and none of these names means something else in another."""
    return frozenset(name for s in SERIES.values() for name in s.loader_unallocated)


def device_table_names() -> str:
    """A regex of the names MODULE_DEVICE_TABLE() makes, in any known series (oldest first)."""
    return "|".join(dict.fromkeys(SERIES[v].device_table for v in sorted(SERIES)))


# ---------------------------------------------------------------------------
# Versions as text

# The two lines of a kernel's top Makefile, as Linux writes them: a name, " = " and a number.
_VERSION_LINE = re.compile(r"^VERSION = ([0-9]+)[ \t]*$", re.M)
_PATCHLEVEL_LINE = re.compile(r"^PATCHLEVEL = ([0-9]+)[ \t]*$", re.M)
_SERIES_TEXT = re.compile(r"([0-9]+)\.([0-9]+)(\..*)?", re.S)


def tree_version(ksrc: Path) -> Version:
    """VERSION and PATCHLEVEL of the kernel tree ``ksrc``, from its top Makefile."""
    makefile = Path(ksrc) / "Makefile"
    if not makefile.is_file():
        raise KasaliasError(f"{ksrc}: not a kernel tree (no Makefile)")
    text = read_input(makefile).decode("utf-8", "surrogateescape")
    major, minor = _VERSION_LINE.search(text), _PATCHLEVEL_LINE.search(text)
    if not (major and minor):
        raise KasaliasError(f"{makefile}: no VERSION/PATCHLEVEL lines: not a kernel's top Makefile")
    return int(major.group(1)), int(minor.group(1))


def parse_series(text: str, *, release: bool = False) -> Version | None:
    """``X.Y`` as a version; with ``release``, anything after ``X.Y.`` too (6.12.117+deb12).
    None for anything else (ASCII digits only)."""
    m = _SERIES_TEXT.fullmatch(text)
    if not m or (m.group(3) is not None and not release):
        return None
    return int(m.group(1)), int(m.group(2))


def version_text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"
