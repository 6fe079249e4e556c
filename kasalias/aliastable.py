"""The alias table: which symbol of which image gets which alias.

A symbol is identified across links by (STT_FILE group, name, ordinal): the
linker keeps each object's local symbols together and in order, so vmlinux.o
and every ``.tmp_vmlinuxN`` (and a module's ``.o`` and its ``.ko``) agree on
it, while addresses move between kallsyms passes. The group's basename is
stored too, to check that two symbol tables really correspond.

File format (``modules.symalias``): a header line, then one tab-separated row
per alias, sorted: image, group, group basename, symbol, ordinal, alias,
decl file:line, CU. ``# image: NAME`` lines list every analysed image, so
that a module with nothing to alias is still known as analysed (in-tree).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from kasalias.errors import KasaliasError
from kasalias.fsutil import write_atomic
from kasalias.symbols import Symbol

HEADER = b"# kasalias alias table 1: image group file symbol ordinal alias decl cu\n"
SymbolKey = tuple[int, str, int]


@dataclass(frozen=True, order=True)
class AliasRow:
    image: str
    group: int
    group_name: str
    symbol: str
    ordinal: int
    alias: str
    decl: str
    cu: str

    @property
    def key(self) -> SymbolKey:
        return (self.group, self.symbol, self.ordinal)


def module_name(path: Path | str) -> str:
    """An image name of the table: KBUILD_MODNAME of a module file
    (``kobject-example.ko`` -> ``kobject_example``)."""
    name = re.sub(r"\.(ko|o)(\.(xz|gz|zst))?$", "", Path(path).name)
    return name.replace("-", "_")


def symbol_keys(symbols: Iterable[Symbol]) -> dict[int, SymbolKey]:
    """Key of every symbol, by symbol index."""
    seen: dict[tuple[int, str], int] = {}
    keys: dict[int, SymbolKey] = {}
    for s in symbols:
        n = seen.get((s.group, s.name), 0)
        seen[(s.group, s.name)] = n + 1
        keys[s.index] = (s.group, s.name, n)
    return keys


class AliasTable:
    def __init__(self, rows: Iterable[AliasRow] = (), images: Iterable[str] = ()) -> None:
        self.rows = sorted(rows)
        self.images = frozenset(images) | {r.image for r in self.rows}

    def for_image(self, image: str) -> list[AliasRow]:
        return [r for r in self.rows if r.image == image]

    def aliases(self) -> frozenset[str]:
        return frozenset(r.alias for r in self.rows)

    def render(self) -> bytes:
        out = [HEADER]
        out.extend(b"# image: %s\n" % i.encode() for i in sorted(self.images))
        for r in self.rows:
            fields = (r.image, str(r.group), r.group_name, r.symbol, str(r.ordinal), r.alias, r.decl, r.cu)
            out.append("\t".join(fields).encode("utf-8", "surrogateescape") + b"\n")
        return b"".join(out)

    def write(self, path: Path) -> bool:
        return write_atomic(path, self.render(), only_if_changed=True)

    @classmethod
    def read(cls, path: Path) -> AliasTable:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise KasaliasError(f"{path}: cannot read: {e.strerror}") from None
        lines = data.splitlines()
        if not lines or lines[0] + b"\n" != HEADER:
            raise KasaliasError(f"{path}: not a kasalias alias table")
        rows, images = [], []
        for lineno, line in enumerate(lines[1:], 2):
            if line.startswith(b"# image: "):
                images.append(line[9:].decode("utf-8", "surrogateescape"))
                continue
            f = line.decode("utf-8", "surrogateescape").split("\t")
            if len(f) != 8 or not f[1].lstrip("-").isdigit() or not f[4].isdigit():
                raise KasaliasError(f"{path}:{lineno}: malformed alias table row")
            rows.append(AliasRow(f[0], int(f[1]), f[2], f[3], int(f[4]), f[5], f[6], f[7]))
        return cls(rows, images)
