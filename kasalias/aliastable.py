"""The alias table: which symbol of which image gets which alias.

A symbol is identified across links by (file, occurrence, name, ordinal):
the linker emits each object's local symbols after that object's STT_FILE
symbol (``file``, a basename), and ``occurrence`` tells apart objects of one
basename (the 28 ``core.c``) by their order. Addresses move between kallsyms
passes and objects move in link order (Kbuild links the head objects first in
``.tmp_vmlinuxN``, not in vmlinux.o), but an object's basename, the order of
same-named objects and its symbols do not. Global symbols have file "".

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

HEADER = b"# kasalias alias table 2: image file occurrence symbol ordinal alias decl cu\n"
SymbolKey = tuple[str, int, str, int]
VMLINUX = "vmlinux"  # the image name of vmlinux in the table; modules go by KBUILD_MODNAME


@dataclass(frozen=True, order=True)
class AliasRow:
    image: str
    file: str
    occurrence: int
    symbol: str
    ordinal: int
    alias: str
    decl: str
    cu: str

    @property
    def key(self) -> SymbolKey:
        return (self.file, self.occurrence, self.symbol, self.ordinal)


def module_name(path: Path | str) -> str:
    """An image name of the table: KBUILD_MODNAME of a module file
    (``kobject-example.ko`` -> ``kobject_example``)."""
    name = re.sub(r"\.(ko|o)(\.(xz|gz|zst))?$", "", Path(path).name)
    return name.replace("-", "_")


def symbol_keys(symbols: Iterable[Symbol], files: list[str]) -> dict[int, SymbolKey]:
    """Key of every symbol, by symbol index; ``files`` are the image's STT_FILE names."""
    occurrence: list[int] = []
    seen_files: dict[str, int] = {}
    for f in files:
        occurrence.append(seen_files.get(f, 0))
        seen_files[f] = occurrence[-1] + 1
    seen: dict[tuple[int, str], int] = {}
    keys: dict[int, SymbolKey] = {}
    for s in symbols:
        n = seen.get((s.group, s.name), 0)
        seen[(s.group, s.name)] = n + 1
        if 0 <= s.group < len(files):
            keys[s.index] = (files[s.group], occurrence[s.group], s.name, n)
        else:
            keys[s.index] = ("", 0, s.name, n)
    return keys


class AliasTable:
    def __init__(self, rows: Iterable[AliasRow] = (), images: Iterable[str] = (),
                 all_aliases: frozenset[str] | None = None) -> None:
        self.rows = sorted(rows)
        self.images = frozenset(images) | {r.image for r in self.rows}
        # every alias of the table, also of the rows left out by read(only_image=...)
        self._aliases = all_aliases

    def by_key(self, image: str, symbols: list[Symbol], files: list[str]) -> list[tuple[AliasRow, Symbol | None]]:
        """The image's rows, each with its symbol among ``symbols`` (None: not there). A name
        that occurs once is found by name too: a final link turns ThinLTO's promoted globals
        (name.llvm.<hash>) back into locals, which moves them into a file group."""
        rows = self.for_image(image)
        names = {r.symbol for r in rows}
        keys = symbol_keys([s for s in symbols if s.name in names], files)
        by_key = {}
        counts: dict[str, int] = {}
        for s in symbols:
            if s.index in keys:
                by_key[keys[s.index]] = s
                counts[s.name] = counts.get(s.name, 0) + 1
        by_name = {s.name: s for s in by_key.values() if counts[s.name] == 1}
        return [(r, by_key.get(r.key) or by_name.get(r.symbol)) for r in rows]

    def for_image(self, image: str) -> list[AliasRow]:
        return [r for r in self.rows if r.image == image]

    def aliases(self) -> frozenset[str]:
        return self._aliases if self._aliases is not None else frozenset(r.alias for r in self.rows)

    def render(self) -> bytes:
        out = [HEADER]
        out.extend(b"# image: %s\n" % i.encode() for i in sorted(self.images))
        for r in self.rows:
            fields = (r.image, r.file, str(r.occurrence), r.symbol, str(r.ordinal), r.alias, r.decl, r.cu)
            out.append("\t".join(fields).encode("utf-8", "surrogateescape") + b"\n")
        return b"".join(out)

    def write(self, path: Path) -> bool:
        return write_atomic(path, self.render(), only_if_changed=True)

    @classmethod
    def read(cls, path: Path, only_image: str | None = None) -> AliasTable:
        """The table in ``path``; with ``only_image``, the rows of that image alone (a module
        step reads one module's rows of a table that holds a whole distribution's)."""
        try:
            data = path.read_bytes()
        except OSError as e:
            raise KasaliasError(f"{path}: cannot read: {e.strerror}") from None
        lines = data.splitlines()
        if not lines or lines[0] + b"\n" != HEADER:
            raise KasaliasError(f"{path}: not a kasalias alias table")
        rows, images, aliases = [], [], []
        prefix = only_image.encode("utf-8", "surrogateescape") + b"\t" if only_image is not None else b""
        for lineno, line in enumerate(lines[1:], 2):
            if line.startswith(b"# image: "):
                images.append(line[9:].decode("utf-8", "surrogateescape"))
                continue
            if only_image is not None and not line.startswith(prefix):
                raw = line.split(b"\t")
                if len(raw) != 8:
                    raise KasaliasError(f"{path}:{lineno}: malformed alias table row")
                aliases.append(raw[5].decode("utf-8", "surrogateescape"))
                continue
            f = line.decode("utf-8", "surrogateescape").split("\t")
            if len(f) != 8 or not f[2].isdigit() or not f[4].isdigit():
                raise KasaliasError(f"{path}:{lineno}: malformed alias table row")
            rows.append(AliasRow(f[0], f[1], int(f[2]), f[3], int(f[4]), f[5], f[6], f[7]))
            aliases.append(f[5])
        return cls(rows, images, frozenset(aliases))
