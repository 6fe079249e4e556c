"""BTF FUNCs for aliased copies of functions: what fentry/fexit attach to (issue 22).

The kernel attaches a BPF trampoline by a BTF FUNC's name: the FUNC gives the arguments (its
FUNC_PROTO), and the address is the kallsyms (vmlinux) or module symbol of the same name, by
exact name (NOTES.md "fentry/fexit on one copy"). A duplicated static has at most one FUNC of its
bare name (pahole 1.24: some copy's proto; 1.31+: none), so each aliased copy gets its own: the
alias spelled with '.' for '@' (a BTF name takes no '@'), static linkage, and the FUNC_PROTO of
that copy's DWARF signature (signature.py), existing or appended.

A copy is left out, with a reason, when its types do not map to exactly one BTF type each, and
when it is a compiler clone (``foo.isra.0``, ``foo.constprop.0``): a clone's arguments are not
its declaration's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kasalias.btf import Btf, BtfAppender, alias_btf_name
from kasalias.errors import KasaliasError
from kasalias.signature import BtfTypes, ProtoMaker, dwarf_signature
from kasalias.srcloc import base_name

if TYPE_CHECKING:
    from kasalias.srcloc import DwarfSource
    from kasalias.symbols import Symbol


def append_copy_funcs(dwarf: DwarfSource, picks: list[tuple[Symbol, str]], btf: Btf) -> tuple[bytes, list[str]]:
    """``btf`` (the image's .BTF, parsed on its base for a module) with a FUNC for each
    (function symbol, alias) of ``picks`` that can have one, in alias order; and the reasons
    for those left out, one line each."""
    app = BtfAppender(btf)
    protos = ProtoMaker(BtfTypes(btf), app)
    entries = dwarf.functions([s for s, _a in picks if s.is_text])
    problems: list[str] = []
    where = dwarf.image.path
    for sym, alias in sorted(picks, key=lambda p: p[1]):
        if not sym.is_text:
            continue
        if base_name(sym.name) != sym.name:
            problems.append(f"{where}: {alias}: a compiler clone; its arguments are not its declaration's: no BTF FUNC")
            continue
        entry = entries.get(sym.index)
        sig = dwarf_signature(dwarf, entry) if entry is not None else None
        if sig is None:
            problems.append(f"{where}: {alias}: no DWARF signature with types BTF can name: no BTF FUNC")
            continue
        proto = protos.proto(sig)
        if proto is None:
            problems.append(f"{where}: {alias}: a type of {sig.render()} is not one BTF type: no BTF FUNC")
            continue
        try:
            app.add_func(alias_btf_name(alias), proto)
        except KasaliasError as e:
            problems.append(f"{where}: {alias}: {e}: no BTF FUNC")
    return app.to_bytes(), problems
