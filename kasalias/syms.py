"""Adding vmlinux aliases to a mksysmap ``.syms`` file, for scripts/kallsyms.

The ``.syms`` file stays as it is (link-vmlinux.sh compares it with
System.map); a NEW file gets each alias line beside its original, with the
original's address and type letter. scripts/kallsyms keeps input order among
equal addresses (after its own rules, which an alias shares with its original:
same address, letter and leading underscores), and the kernel gives an address
the first name there. So the table's placement decides: original-first puts the
alias right after its original (backtraces and ftrace keep the original name),
alias-first right before it (the alias is the name ftrace and backtraces use).

With vmlinux's BTF (``--btf``), a copy that has a BTF FUNC under its alias' BTF
spelling (kasalias.fentry: ``type_show.net_core_net_sysfs_c_116``) also gets that
name, right after its alias: the kernel finds an fentry/fexit target's address by
the FUNC's name, in kallsyms, by exact name.
"""

from __future__ import annotations

import re
import logging
from collections import defaultdict
from pathlib import Path

from kasalias.aliastable import ALIAS_FIRST, VMLINUX, AliasTable
from kasalias.errors import KasaliasError
from kasalias.fsutil import read_input, write_atomic
from kasalias.symbols import ElfImage

log = logging.getLogger(__name__)
_HEX = re.compile(rb"[0-9a-fA-F]+")


def aliases_by_address(image: Path, table: AliasTable) -> dict[tuple[int, str], list[str]]:
    """(address, name) -> aliases, for the symbols of ``image`` that the table names."""
    out: dict[tuple[int, str], list[str]] = defaultdict(list)
    if not table.for_image(VMLINUX):
        return out
    with ElfImage(image) as img:
        if img.is_relocatable:  # section-relative values: no address of the .syms file matches
            raise KasaliasError(f"{image}: a relocatable object, not the linked image the .syms file was made from")
        pairs = table.by_key(VMLINUX, img.symbols, img.file_groups(), img.hidden_symbols())
        missing = [r for r, sym in pairs if sym is None]
        # A symbol the final link discards has no entry to alias; most of them missing means
        # that the table was made from another image.
        if len(missing) * 2 > len(pairs):
            raise KasaliasError(f"{image}: symbol tables do not correspond: {len(missing)} of {len(pairs)} "
                                f"aliased symbols (e.g. {missing[0].symbol} in {missing[0].file}) are not there")
        for r in missing:  # an alias must never vanish silently
            log.warning("%s: %s (%s, alias %s) is not in this image; no alias for it", image, r.symbol,
                        r.cu, r.alias)
        for r, sym in pairs:
            if sym is not None:
                out[(img.address(sym), sym.name)].append(r.alias)
    for v in out.values():
        v.sort()
    return out


def add_aliases(syms_in: Path, image: Path, table: AliasTable, syms_out: Path,
                btf_funcs: frozenset[str] = frozenset()) -> int:
    """Write ``syms_out``: ``syms_in`` with alias lines, and a line for each alias' BTF
    spelling that ``btf_funcs`` (vmlinux's BTF FUNC names) holds; return how many were added."""
    data = read_input(syms_in)
    # name -> address -> aliases still to place (an address can hold two copies of a name)
    wanted: dict[bytes, dict[int, list[str]]] = defaultdict(dict)
    for (addr, name), aliases in aliases_by_address(image, table).items():
        wanted[name.encode("utf-8", "surrogateescape")][addr] = aliases
    total = sum(len(v) for by_addr in wanted.values() for v in by_addr.values())
    before = table.placement == ALIAS_FIRST
    out: list[bytes] = []
    added = 0
    hexdigits = _HEX
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split(b" ", 2)
        if len(parts) != 3 or len(parts[1]) != 1 or not parts[2] or hexdigits.fullmatch(parts[0]) is None:
            raise KasaliasError(f"{syms_in}:{lineno}: not an 'ADDR TYPE NAME' line")
        if not before:
            out.append(line + b"\n")
        by_addr = wanted.get(parts[2])
        if by_addr:
            pending = by_addr.get(int(parts[0], 16))
            if pending:
                alias = pending.pop(0)
                out.append(b"%s %s %s\n" % (parts[0], parts[1], alias.encode()))
                added += 1
                dotted = alias.replace("@", ".")
                if dotted in btf_funcs:
                    out.append(b"%s %s %s\n" % (parts[0], parts[1], dotted.encode()))
                    added += 1
        if before:
            out.append(line + b"\n")
    if added < total:
        # the .syms file and the image disagree: most aliases unplaced means another image's list
        left = sorted(a for by_addr in wanted.values() for v in by_addr.values() for a in v)
        if added * 2 < total:
            raise KasaliasError(f"{syms_in}: {len(left)} of {total} aliases have no original line at the "
                                f"image's address (e.g. {left[0]}): not made from {image}?")
        for alias in left:
            log.warning("%s: no original line for %s at its image's address; no alias for it", syms_in, alias)
    write_atomic(syms_out, b"".join(out))
    return added
