"""Which symbols get aliases.

Text symbols whose name is duplicated get aliases by default, data symbols on
request (``--data``). Names made up by the compiler or by kernel macros never
do: nobody can point at them in the source (``__func__.3``, ``__key.12``), or
they are prefix twins of a function (``__pfx_``/``__cfi_``) that tracers never
name. NOTES.md lists the reasons for each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kasalias.series import PREFIX_TWINS, device_table_names
from kasalias.symbols import Symbol

# GCC numbers function-local statics "name.N"; these names come from macros or the compiler.
_GENERATED_LOCALS = (
    "__func__", "__FUNCTION__", "__PRETTY_FUNCTION__",  # the compiler's function names
    "__key", "__mkey", "__lock_key", "__class_key",  # lockdep keys from spin_lock_init() & co.
    "CSWTCH",  # GCC's switch conversion tables
    "__compound_literal",  # GCC's compound literals
    "__already_done", "__print_once", "__warned", "__done",  # WARN_ONCE/printk_once flags
    "___once_key", "___done",  # DO_ONCE()
    "___tp_str", "__tpstrtab",  # tracepoint format strings
    "_rs",  # printk_ratelimited() state
    "descriptor", "__UNIQUE_ID_ddebug",  # dynamic debug descriptors
    "__msg", "__flags", "__param_str", "__setup_str",
)
GENERATED = re.compile(
    r"^(?:" + "|".join(PREFIX_TWINS) + r"|__UNIQUE_ID_|__initcall_|__exitcall_|__kstrtab_|__kstrtabns_|__ksymtab_|__crc_"
    r"|__export_symbol_|__param_|__setup_|__bpf_trace_tp_map_|__tracepoint_ptr_)"
    r"|^(?:" + "|".join(re.escape(n) for n in _GENERATED_LOCALS) + r")\.\d+$"
    r"|^(?:init_module|cleanup_module|__this_module)$"  # module_init()/module_exit() aliases, modpost data
    r"|^orc_header$"  # scripts/module-common.c, linked into every module
    r"|^__(?:start|stop)_"  # section bounds the linker defines (no source at all)
    # What scripts/kallsyms takes for a linker script's symbol (may_be_linker_script_provide_symbol():
    # 8 characters or more, "__" and then "start_", "stop_" or "end_", or ending in "_start" or
    # "_end"): at an address it sorts such a name after every other, so an alias would become
    # the name the kernel prints and traces for that address. Clang emits tracepoints'
    # __do_trace_<event> out of line: __do_trace_initcall_start in init/main.c and printk.c.
    r"|^__(?=.{6})(?:(?:start|stop|end)_|.*_(?:start|end)$)"
    r"|^__SCT__"  # static call trampolines: assembly from DEFINE_STATIC_CALL(), no DWARF definition
    r"|^C\.\d+(?:\.\d+)*$"  # GCC's constant pools of initializers (C.2.0)
    r"|" + device_table_names() +  # MODULE_DEVICE_TABLE()'s names in every known series
    r"|^_note_\d+$"  # ELF note labels from the ELFNOTE() macro
    r"|^_sub_[ID]_\d+_\d+$"  # GCC's constructor/destructor stubs
    r"|^\.L|^\$"  # assembler temporaries and mapping symbols
)


def is_generated(name: str) -> bool:
    return GENERATED.search(name) is not None


@dataclass(frozen=True)
class Policy:
    """What to alias among duplicated names."""

    text: bool = True
    data: bool = False

    def covers(self, sym: Symbol) -> bool:
        if is_generated(sym.name) or sym.letter in "aAUvwC?":
            return False
        if sym.is_text:
            return self.text
        return self.data

    def describe(self) -> str:
        return "+".join(k for k, on in (("text", self.text), ("data", self.data)) if on) or "nothing"
