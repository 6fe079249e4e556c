"""Which symbols of a loaded module the kernel lists in kallsyms (Linux 6.1, 6.12, 7.2, 7.3).

``.ko`` files do not pass through ``scripts/kallsyms``: the module loader copies symbols from
the module's ``.symtab`` when it is loaded (:func:`module_keeps`), and address lookups skip
some of them (:func:`module_lookup_ignores`). What differs between series is in
:mod:`kasalias.series`.
"""

from __future__ import annotations

from kasalias.series import DEFAULT_SERIES, Version, loader_unallocated, stand_in
from kasalias.symbols import SHF_ALLOC, SHF_EXECINSTR, SHN_UNDEF

__all__ = ["FTRACE_CALLSITES", "module_init_layout_section", "module_keeps", "module_lookup_ignores"]

# Where a module lists the places ftrace patches, by architecture (the loader's
# FTRACE_CALLSITE_SECTION, kernel/module/main.c, 6.1 to 7.3): the compiler's nop table where the
# arch's ftrace uses it (CC_USING_PATCHABLE_FUNCTION_ENTRY: arm64), else __mcount_loc. x86's
# __patchable_function_entries is its call padding's, never ftrace's. Each entry: (section, how
# far before a function's symbol its entry may lie: arm64's CALL_OPS puts two nops before it).
FTRACE_CALLSITES: dict[str, tuple[tuple[str, int], ...]] = {
    "x86_64": (("__mcount_loc", 0),),
    "arm64": (("__patchable_function_entries", 8), ("__mcount_loc", 0)),
}


def module_init_layout_section(section_name: str, module_unload: bool = True, arch: str = "x86") -> bool:
    """kernel/module/main.c ``module_init_layout_section()`` (6.1, 6.12, 7.2, 7.3).

    ``.init*`` sections, and ``.exit*`` ones when CONFIG_MODULE_UNLOAD is off,
    go to the module's init area, freed after init.  ``module_init_section()``
    and ``module_exit_section()`` are ``__weak``; only 32-bit ARM overrides
    them (``.ARM.extab.init``/``.ARM.exidx.init`` and the ``exit`` pair).
    """
    init_prefixes: tuple[str, ...] = (".init",)
    exit_prefixes: tuple[str, ...] = (".exit",)
    if arch == "arm":
        init_prefixes += (".ARM.extab.init", ".ARM.exidx.init")
        exit_prefixes += (".ARM.extab.exit", ".ARM.exidx.exit")
    if not module_unload and section_name.startswith(exit_prefixes):
        return True
    return section_name.startswith(init_prefixes)


# Sections whose SHF_ALLOC the module loader clears (kernel/module/main.c
# rewrite_section_headers()), those of every known series (series.Series.loader_unallocated).
_LOADER_UNALLOCATED = loader_unallocated()


def module_keeps(
    name: str,
    st_type: int,
    st_shndx: int,
    section_name: str,
    section_flags: int,
    shnum: int,
    kallsyms_all: bool = True,
    *,
    smp: bool = True,
    module_unload: bool = True,
    livepatch: bool = False,
    arch: str = "x86",
) -> bool:
    """True if a loaded module's symbol is listed in /proc/kallsyms (after init).

    ``section_name``/``section_flags`` describe section ``st_shndx`` as in the
    ``.ko`` file (pass ``""``/0 for reserved indices); ``shnum`` is the ELF
    header's e_shnum.  The rules are the same in 6.1, 6.12, 7.2 and 7.3:

    * kernel/kallsyms.c ``s_show()``: an empty name is never shown (so
      st_name == 0, e.g. STT_SECTION symbols, never appears).
    * kernel/module/kallsyms.c ``layout_symtab()``/``add_kallsyms()``: a
      livepatch module keeps its whole symbol table (even undefined symbols);
      others keep what ``is_core_symbol()`` accepts:
    * ``is_core_symbol()``: not SHN_UNDEF, not st_shndx >= e_shnum (so never
      SHN_ABS -- STT_FILE symbols --, SHN_COMMON or SHN_XINDEX);
    * ``is_core_symbol()`` with CONFIG_KALLSYMS_ALL: any symbol of the percpu
      section (kernel/module/main.c ``find_pcpusec()``: the SHF_ALLOC section
      named ``.data..percpu``; none on !SMP kernels);
    * ``is_core_symbol()``: the section must be SHF_ALLOC once the loader has
      cleared that flag on ``.modinfo``, ``__versions`` (and, from 6.14 on,
      ``__version_ext_crcs``/``__version_ext_names``)
      (``rewrite_section_headers()``) and the percpu section
      (``layout_and_allocate()``);
    * ``is_core_symbol()`` without CONFIG_KALLSYMS_ALL: the section must also
      be SHF_EXECINSTR;
    * ``is_core_symbol()``: not in an init section (6.1: INIT_OFFSET_MASK in
      sh_entsize, 6.4 on: ``mod_mem_type_is_init()``, both set by
      ``layout_sections()`` from :func:`module_init_layout_section`).

    ``st_type`` plays no part in these rules (it only picks the letter in
    ``elf_type()``).  Names of KSYM_NAME_LEN bytes or more are listed, cut to
    511 bytes.  Before the module's init has finished, /proc/kallsyms shows
    the full symbol table instead.
    """
    del st_type  # not used by the kernel's selection
    if not name:
        return False
    if livepatch:
        return True
    if st_shndx == SHN_UNDEF or st_shndx >= shnum:
        return False
    is_pcpu = smp and section_name == ".data..percpu" and bool(section_flags & SHF_ALLOC)
    if kallsyms_all and is_pcpu:
        return True
    flags = section_flags
    if is_pcpu or section_name in _LOADER_UNALLOCATED:
        flags &= ~SHF_ALLOC
    if not flags & SHF_ALLOC:
        return False
    if not kallsyms_all and not flags & SHF_EXECINSTR:
        return False
    if module_init_layout_section(section_name, module_unload=module_unload, arch=arch):
        return False
    return True


def module_lookup_ignores(name: str, version: Version = DEFAULT_SERIES) -> bool:
    """True for names that address lookups in modules skip (they still are listed).

    kernel/module/kallsyms.c ``find_kallsyms_symbol()`` (backtraces, %pS) skips empty names
    and mapping symbols, as the series of ``version`` (or its stand-in) says
    (series.Series.mapping_symbols): 6.12 and 7.x ``is_mapping_symbol()``
    (include/linux/module_symbol.h: ``.L*``, ``L0*``, ``$*``); 6.1
    ``is_arm_mapping_symbol()`` (``.L*`` and ``$a``/``$x``/``$t``/``$d`` alone or followed
    by ``.``).
    """
    if not name:
        return True
    if stand_in(version).mapping_symbols == "generic":
        return name.startswith((".L", "L0", "$"))
    if name.startswith(".L"):
        return True
    return len(name) >= 2 and name[0] == "$" and name[1] in "axtd" and (len(name) == 2 or name[2] == ".")
