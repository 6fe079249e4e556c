"""An alias must sort after its original in scripts/kallsyms (compare_symbols(), the same in
6.1, 6.12 and 7.3): the first name at an address is the one the kernel prints and traces.
On the 7.3 LLVM=1 kernel, __do_trace_initcall_start's alias came first (the booted test
caught it): kallsyms sorts names it takes for linker script symbols after all others."""

from __future__ import annotations

import pytest

from kasalias.policy import Policy, is_generated
from kasalias.symbols import STB_LOCAL, STT_FUNC, Symbol


def linker_script_like(name: str) -> bool:
    """scripts/kallsyms.c's may_be_linker_script_provide_symbol()."""
    if len(name) < 8 or not name.startswith("__"):
        return False
    return name[2:].startswith(("start_", "stop_", "end_")) or name.endswith(("_start", "_end"))


def kallsyms_key(letter: str, name: str, seq: int) -> tuple[int, ...]:
    """compare_symbols() at one address: weak last, then linker script names, then the
    number of leading underscores, then the order of the input."""
    return (letter in "wW", linker_script_like(name), len(name) - len(name.lstrip("_")), seq)


NAMES = ["name_show", "__do_trace_initcall_start", "__do_trace_initcall_finish", "__x_end", "__ab_end",
         "__start_foo", "__stop_foo", "__end_foo", "__a_end", "_x_start", "x_end", "__d_end.isra.0",
         "__do_trace_initcall_start.llvm.8213", "__init_begin", "___x_start", "__end_"]


@pytest.mark.parametrize("name", NAMES)
def test_every_covered_name_sorts_before_its_alias(name: str) -> None:
    sym = Symbol(1, name, 0x10, 5, STT_FUNC, STB_LOCAL, 1, "t", 0)
    alias = name.split(".llvm.", 1)[0] + "@init_main_c_27"
    if Policy().covers(sym):
        assert kallsyms_key("t", name, 0) < kallsyms_key("t", alias, 1), name
    else:
        assert is_generated(name)


def test_linker_script_like_names_are_left_out() -> None:
    assert is_generated("__do_trace_initcall_start") and is_generated("__xy_end")
    assert not is_generated("__do_trace_initcall_finish") and not is_generated("__a_end")  # 7 characters
    assert not is_generated("__do_trace_initcall_start.llvm.8213")  # kallsyms sorts it as any other name
