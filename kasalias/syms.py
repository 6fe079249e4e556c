"""Adding vmlinux aliases to a mksysmap ``.syms`` file, for scripts/kallsyms.

The ``.syms`` file stays as it is (link-vmlinux.sh compares it with
System.map); a NEW file gets each alias line right after its original, with
the original's address and type letter. scripts/kallsyms keeps input order
among equal addresses, and the kernel reports the first name at an address,
so backtraces still show the original name.
"""

from __future__ import annotations

import re
import logging
from collections import defaultdict
from pathlib import Path

from kasalias.aliastable import AliasTable
from kasalias.analysis import VMLINUX
from kasalias.errors import KasaliasError
from kasalias.fsutil import write_atomic
from kasalias.symbols import ElfImage

log = logging.getLogger(__name__)
_LINE = re.compile(rb"^([0-9a-fA-F]+) (\S) (\S.*)$")


def aliases_by_address(image: Path, table: AliasTable) -> dict[tuple[int, str], list[str]]:
    """(address, name) -> aliases, for the symbols of ``image`` that the table names."""
    out: dict[tuple[int, str], list[str]] = defaultdict(list)
    if not table.for_image(VMLINUX):
        return out
    with ElfImage(image) as img:
        pairs = table.by_key(VMLINUX, img.symbols, img.file_groups())
        missing = [r for r, sym in pairs if sym is None]
        # A symbol the final link discards has no entry to alias; most of them missing means
        # that the table was made from another image.
        if len(missing) * 2 > len(pairs):
            raise KasaliasError(f"{image}: symbol tables do not correspond: {len(missing)} of {len(pairs)} "
                                f"aliased symbols (e.g. {missing[0].symbol} in {missing[0].file}) are not there")
        for r in missing:
            log.debug("%s: %s (%s) not found", image, r.symbol, r.file)
        for r, sym in pairs:
            if sym is not None:
                out[(img.address(sym), sym.name)].append(r.alias)
    for v in out.values():
        v.sort()
    return out


def add_aliases(syms_in: Path, image: Path, table: AliasTable, syms_out: Path) -> int:
    """Write ``syms_out``: ``syms_in`` with alias lines; return how many were added."""
    try:
        data = syms_in.read_bytes()
    except OSError as e:
        raise KasaliasError(f"{syms_in}: cannot read: {e.strerror}") from None
    wanted = aliases_by_address(image, table)
    out: list[bytes] = []
    added = 0
    for lineno, line in enumerate(data.splitlines(), 1):
        m = _LINE.match(line)
        if m is None:
            raise KasaliasError(f"{syms_in}:{lineno}: not an 'ADDR TYPE NAME' line")
        out.append(line + b"\n")
        key = (int(m.group(1), 16), m.group(3).decode("utf-8", "surrogateescape"))
        pending = wanted.get(key)
        if pending:
            alias = pending.pop(0)
            out.append(b"%s %s %s\n" % (m.group(1), m.group(2), alias.encode()))
            added += 1
    write_atomic(syms_out, b"".join(out))
    return added
