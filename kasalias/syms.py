"""Adding vmlinux aliases to a mksysmap ``.syms`` file, for scripts/kallsyms.

The ``.syms`` file stays as it is (link-vmlinux.sh compares it with
System.map); a NEW file gets each alias line right after its original, with
the original's address and type letter. scripts/kallsyms keeps input order
among equal addresses, and the kernel reports the first name at an address,
so backtraces still show the original name.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

from kasalias.aliastable import AliasTable, symbol_keys
from kasalias.analysis import VMLINUX
from kasalias.errors import KasaliasError
from kasalias.fsutil import write_atomic
from kasalias.symbols import ElfImage

_LINE = re.compile(rb"^([0-9a-fA-F]+) (\S) (\S.*)$")


def aliases_by_address(image: Path, table: AliasTable) -> dict[tuple[int, str], list[str]]:
    """(address, name) -> aliases, for the symbols of ``image`` that the table names."""
    rows = table.for_image(VMLINUX)
    out: dict[tuple[int, str], list[str]] = defaultdict(list)
    if not rows:
        return out
    with ElfImage(image) as img:
        groups = img.file_groups()
        keys = symbol_keys(img.symbols)
        by_key = {keys[s.index]: s for s in img.symbols}
        # A name the image holds once is found by name too: the final link turns ThinLTO's
        # promoted globals (name.llvm.<hash>) back into locals, which moves them into a group.
        counts = Counter(s.name for s in img.symbols)
        by_name = {s.name: s for s in img.symbols if counts[s.name] == 1}
        for r in rows:
            if r.group >= 0 and (r.group >= len(groups) or groups[r.group] != r.group_name):
                found = groups[r.group] if 0 <= r.group < len(groups) else "none"
                raise KasaliasError(f"{image}: symbol tables do not correspond: file group {r.group} is "
                                    f"{found!r} here, {r.group_name!r} in the analysed image")
            sym = by_key.get(r.key) or by_name.get(r.symbol)
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
