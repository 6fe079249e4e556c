"""The alias table: which symbol of which image gets which alias.

A symbol is identified across links by (file, occurrence, name, ordinal):
the linker emits each object's local symbols after that object's STT_FILE
symbol (``file``, a basename), and ``occurrence`` tells apart objects of one
basename (the 28 ``core.c``) by their order. Addresses move between kallsyms
passes and objects move in link order (Kbuild links the head objects first in
``.tmp_vmlinuxN``, not in vmlinux.o), but an object's basename, the order of
same-named objects and its symbols do not. Global symbols have file "".

File format (``modules.symalias``): a header line; a placement line
(``# placement: original-first`` or ``alias-first``: where each alias goes
beside its original, for vmlinux's kallsyms and every module alike, so that a
module built later follows the kernel it is built for); an index, one
``# image: NAME OFFSET LENGTH`` line per analysed image (so that a module with
nothing to alias is still known as analysed, in-tree), where OFFSET (ten
digits) and LENGTH locate the image's rows in the file; then one tab-separated
row per alias, sorted: image, file, occurrence, symbol, ordinal, alias, decl
file:line, CU. A module step reads its own rows through the index: searching a
distribution's table for them cost more than a millisecond per module.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kasalias.errors import KasaliasError
from kasalias.fsutil import open_input, read_input, write_atomic

if TYPE_CHECKING:
    from typing import BinaryIO, Iterable

    from kasalias.fsutil import StrPath
    from kasalias.symbols import Symbol

# One format is read, the one written: a build directory's table is made again by the kasalias
# that reads it (vmlinux's link command names the kasalias build).
HEADER = b"# kasalias alias table 4: image file occurrence symbol ordinal alias decl cu\n"
# Where an alias goes at its original's address. original-first: after it, so the kernel keeps
# printing and tracing the original name there (backtraces, %pS, ftrace's name of the address);
# alias-first: before it, so the alias is that name, which ftrace's filters, fprobe and bpftrace's
# attach checks go by (NOTES.md, "Placement"). The original stays in kallsyms either way.
ORIGINAL_FIRST, ALIAS_FIRST = "original-first", "alias-first"
PLACEMENTS = (ORIGINAL_FIRST, ALIAS_FIRST)
SymbolKey = tuple[str, int, str, int]
VMLINUX = "vmlinux"  # the image name of vmlinux in the table; modules go by KBUILD_MODNAME


class AliasRow:
    """One alias: rows sort by image, then by the symbol's identity (all fields in order)."""

    __slots__ = ("image", "file", "occurrence", "symbol", "ordinal", "alias", "decl", "cu")

    def __init__(self, image: str, file: str, occurrence: int, symbol: str, ordinal: int, alias: str, decl: str,
                 cu: str) -> None:
        self.image, self.file, self.occurrence, self.symbol = image, file, occurrence, symbol
        self.ordinal, self.alias, self.decl, self.cu = ordinal, alias, decl, cu

    def astuple(self) -> tuple[str, str, int, str, int, str, str, str]:
        return (self.image, self.file, self.occurrence, self.symbol, self.ordinal, self.alias, self.decl, self.cu)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AliasRow) and self.astuple() == other.astuple()

    def __lt__(self, other: AliasRow) -> bool:
        return self.astuple() < other.astuple()

    def __hash__(self) -> int:
        return hash(self.astuple())

    def __repr__(self) -> str:
        return f"AliasRow{self.astuple()!r}"

    @property
    def key(self) -> SymbolKey:
        return (self.file, self.occurrence, self.symbol, self.ordinal)


def module_name(path: StrPath) -> str:
    """An image name of the table: KBUILD_MODNAME of a module file
    (``kobject-example.ko`` -> ``kobject_example``, ``ext4.ko.xz`` -> ``ext4``)."""
    name = os.path.basename(os.fspath(path))
    stem, dot, ext = name.rpartition(".")
    if dot and ext in ("xz", "gz", "zst") and stem.endswith((".ko", ".o")):
        name = stem
    for suffix in (".ko", ".o"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def symbol_keys(symbols: Iterable[Symbol], files: list[str],
                ordinals: dict[int, int] | None = None) -> dict[int, SymbolKey]:
    """Key of every symbol, by symbol index; ``files`` are the image's STT_FILE names.
    A symbol's ordinal counts the symbols of its name before it in its group: ``symbols``
    are all of the image's symbols of their names, or ``ordinals`` (symbol_ordinals over
    those) gives the ordinals."""
    symbols = list(symbols)
    if ordinals is None:
        ordinals = symbol_ordinals(symbols)
    occurrence: list[int] = []
    seen_files: dict[str, int] = {}
    for f in files:
        occurrence.append(seen_files.get(f, 0))
        seen_files[f] = occurrence[-1] + 1
    keys: dict[int, SymbolKey] = {}
    for s in symbols:
        n = ordinals.get(s.index, 0)
        if 0 <= s.group < len(files):
            keys[s.index] = (files[s.group], occurrence[s.group], s.name, n)
        else:
            keys[s.index] = ("", 0, s.name, n)
    return keys


def symbol_ordinals(symbols: Iterable[Symbol]) -> dict[int, int]:
    """The ordinals of symbol_keys() that are not 0 (a name defined twice in one group: rare),
    by symbol index: what an image keeps of its keys until it knows which it needs."""
    seen: dict[tuple[int, str], int] = {}
    out: dict[int, int] = {}
    for s in symbols:
        n = seen.get((s.group, s.name), 0)
        seen[(s.group, s.name)] = n + 1
        if n:
            out[s.index] = n
    return out


class AliasTable:
    def __init__(self, rows: Iterable[AliasRow] = (), images: Iterable[str] = (),
                 path: str = "", data: bytes | None = None, placement: str = ORIGINAL_FIRST) -> None:
        if placement not in PLACEMENTS:
            raise ValueError(placement)
        self.rows = sorted(rows, key=AliasRow.astuple)
        self.images = frozenset(images) | {r.image for r in self.rows}
        self.placement = placement
        # the whole table file, also the rows left out by read(only_image=...):
        # aliases() reads every alias from it only if asked (out-of-tree modules)
        self._path, self._data = path, data

    def by_key(self, image: str, symbols: list[Symbol], files: list[str],
               hidden: frozenset[int] = frozenset()) -> list[tuple[AliasRow, Symbol | None]]:
        """The image's rows, each with its symbol among ``symbols`` (None: not there). A name
        that occurs once is found by name too: a final link turns ThinLTO's promoted globals
        (name.llvm.<hash>) back into locals, which moves them into a file group. A row of a
        global that the link made local (``hidden``: the indices of STV_HIDDEN symbols; the
        linker puts them in some file group, not their object's) takes the one hidden local of
        its name that no other row's key names."""
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
        out = [(r, by_key.get(r.key) or by_name.get(r.symbol)) for r in rows]
        if hidden and any(sym is None and r.file == "" for r, sym in out):
            claimed = {sym.index for _r, sym in out if sym is not None}
            demoted: dict[str, list[Symbol]] = {}
            for s in by_key.values():
                if s.index in hidden and s.index not in claimed and s.group >= 0:
                    demoted.setdefault(s.name, []).append(s)
            out = [(r, sym if sym is not None or r.file else _only(demoted.get(r.symbol, []))) for r, sym in out]
        return out

    def for_image(self, image: str) -> list[AliasRow]:
        return [r for r in self.rows if r.image == image]

    def aliases(self) -> frozenset[str]:
        """Every alias of the table (also of images left out by read(only_image=...))."""
        if self._data is None and self._path:
            return read_aliases(self._path)
        if self._data is None:
            return frozenset(r.alias for r in self.rows)
        return _aliases_of(self._data, self._path)

    def render(self) -> bytes:
        blocks: dict[str, list[bytes]] = {i: [] for i in self.images}
        for r in self.rows:  # sorted by image: each image's rows in one block, in index order
            fields = (r.image, r.file, str(r.occurrence), r.symbol, str(r.ordinal), r.alias, r.decl, r.cu)
            blocks[r.image].append("\t".join(fields).encode("utf-8", "surrogateescape") + b"\n")
        images = sorted(blocks)
        sizes = [sum(map(len, blocks[i])) for i in images]
        # OFFSET has a fixed width, so the index's own size is known before the offsets.
        head = _header(self.placement)
        offset = len(head) + sum(len(_index_line(i, 0, n)) for i, n in zip(images, sizes))
        out = [head]
        for i, n in zip(images, sizes):
            out.append(_index_line(i, offset, n))
            offset += n
        out.extend(line for i in images for line in blocks[i])
        return b"".join(out)

    def write(self, path: StrPath) -> bool:
        return write_atomic(path, self.render(), only_if_changed=True)

    @classmethod
    def read(cls, path: StrPath, only_image: str | None = None) -> AliasTable:
        """The table in ``path``; with ``only_image``, the rows of that image alone, found
        through the index (a module step reads one module's rows of a table that holds a
        whole distribution's)."""
        path = os.fspath(path)
        try:
            with open_input(path) as f:
                if only_image is None:
                    data = f.read()
                    placement = _check_header(data, path)
                    lines = _lines(data, path)
                else:
                    data = b""  # aliases() reads the whole file if it is asked for
                    placement, lines = _image_lines(f, only_image, path)
        except OSError as e:
            raise KasaliasError(f"{path}: cannot read: {e.strerror}") from None
        rows: list[AliasRow] = []
        images: list[str] = []
        for lineno, line in lines:
            if line.startswith(b"# image: "):
                images.append(_field(line[9:], path, lineno))
                continue
            v = [_field(f, path, lineno) for f in line.split(b"\t")]
            if len(v) != 8 or not _is_number(v[2]) or not _is_number(v[4]) or not is_alias(v[5], v[3]):
                raise KasaliasError(f"{path}:{lineno}: malformed alias table row")
            rows.append(AliasRow(v[0], v[1], int(v[2]), v[3], int(v[4]), v[5], v[6], v[7]))
        return cls(rows, images, path, data or None, placement)


def read_aliases(path: StrPath) -> frozenset[str]:
    """Every alias of the table in ``path``: the names a module built out of tree must not take."""
    path = os.fspath(path)
    data = read_input(path)
    _check_header(data, path)
    return _aliases_of(data, path)


def _aliases_of(data: bytes, path: str) -> frozenset[str]:
    """The alias column of every row, checked as a whole (a distribution's table has some
    40,000 rows: a module step reads them once per group, not a field at a time)."""
    column = []
    for line in data.split(b"\n")[2:]:
        if line and not line.startswith(b"#"):
            v = line.split(b"\t")
            if len(v) != 8:
                break  # the line is found and reported below
            column.append(v[5])
    else:
        try:
            names = b"\n".join(column).decode("utf-8").split("\n")
            if "".join(names).isprintable():
                return frozenset(names)
        except UnicodeDecodeError:
            pass
    for lineno, line in _lines(data, path):  # something is wrong: say which line
        if not line.startswith(b"#"):
            v = line.split(b"\t")
            if len(v) != 8:
                raise KasaliasError(f"{path}:{lineno}: malformed alias table row")
            _field(v[5], path, lineno)
    raise AssertionError("unreachable: a bad row was found above")


def _is_number(field: str | bytes) -> bool:
    """A number field of the table (row or index line): ASCII digits (str.isdigit() takes '²',
    which int() refuses), at most 18 (int() refuses 4,301; no file is 10^18 bytes long)."""
    return field.isascii() and field.isdigit() and len(field) <= 18


def _only(symbols: list[Symbol]) -> Symbol | None:
    return symbols[0] if len(symbols) == 1 else None


def _field(raw: bytes, path: str, lineno: int) -> str:
    """A field of the table: UTF-8 without control bytes (what kasalias writes)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KasaliasError(f"{path}:{lineno}: malformed alias table row (not UTF-8)") from None
    if not text.isprintable():
        raise KasaliasError(f"{path}:{lineno}: malformed alias table row (a control byte)")
    return text


def is_alias(alias: str, symbol: str) -> bool:
    """What an alias of ``symbol`` looks like: its name (without ThinLTO's suffix), '@', a
    source identity; one word that kallsyms keeps (shorter than KSYM_NAME_LEN)."""
    base = symbol.split(".llvm.", 1)[0]
    return (alias.startswith(base + "@") and len(alias) > len(base) + 1 and len(alias.encode()) < 512
            and one_word(alias))


def one_word(text: str) -> bool:
    """Whether ``text`` is one non-empty word: no character that str.isspace() takes (which
    are those str.split() splits at), tested at C speed rather than a character at a time."""
    return text.split() == [text]


def _header(placement: str) -> bytes:
    return HEADER + b"# placement: %s\n" % placement.encode()


def _check_header(data: bytes, path: str) -> str:
    """The table's placement; an error unless ``data`` begins with a header of this format."""
    if not data.startswith(HEADER):
        raise KasaliasError(f"{path}: not a kasalias alias table (format 4)")
    for placement in PLACEMENTS:
        if data.startswith(_header(placement)):
            return placement
    raise KasaliasError(f"{path}:2: not a '# placement: {' | '.join(PLACEMENTS)}' line")


def _index_line(image: str, offset: int, length: int) -> bytes:
    return b"# image: %s %010d %d\n" % (image.encode("utf-8", "surrogateescape"), offset, length)


def _index_end(head: bytes, header: int, path: str) -> int:
    """Where the index of a table whose first bytes are ``head`` ends: at the offset its
    first line gives (the rows of the first image begin there), or after the header
    (``header`` bytes)."""
    first = head[header:]
    if not first.startswith(b"# image: "):
        return header
    fields = first.split(b"\n", 1)[0].split(b" ")  # a whole line: image names are short
    if b"\n" not in first or len(fields) != 5 or not _is_number(fields[3]) or int(fields[3]) < header:
        raise KasaliasError(f"{path}:3: malformed index line")
    return int(fields[3])


def _lines(data: bytes, path: str) -> list[tuple[int, bytes]]:
    """(line number, line) of the table's lines after the header, ``# image:`` lines cut
    to ``# image: NAME``."""
    out = []
    for lineno, line in enumerate(data.splitlines()[2:], 3):
        if line.startswith(b"# image: "):
            line = b"# image: " + line[9:].split(b" ", 1)[0]
        out.append((lineno, line))
    return out


_HEAD_SIZE = 1 << 16  # one read holds the index of most kernels (1,138 modules: 36 KiB; 4,230: 140 KiB)


def _image_lines(f: BinaryIO, image: str, path: str) -> tuple[str, list[tuple[int, bytes]]]:
    """The placement, and like _lines, the index line and rows of ``image`` alone: the
    index is read whole (it ends where its first line says the rows begin), the rows from
    where the image's index line says."""
    data = f.read(_HEAD_SIZE)
    placement = _check_header(data, path)
    name = image.encode("utf-8", "surrogateescape")
    index_end = _index_end(data, len(_header(placement)), path)
    if index_end > len(data):
        # bounded by the file's size first: the first index line's offset may be 10^15
        data += f.read(min(index_end, os.fstat(f.fileno()).st_size) - len(data))
        if index_end > len(data):
            raise KasaliasError(f"{path}: truncated alias table (the index ends past the end of the file)")
    data = data[:index_end]
    key = b"\n# image: " + name + b" "
    pos = data.find(key)
    if pos < 0:
        return placement, []
    end = data.find(b"\n", pos + 1)
    fields = data[pos + 1:end if end >= 0 else len(data)].split(b" ")
    lineno = data.count(b"\n", 0, pos + 1) + 1
    if len(fields) != 5 or not _is_number(fields[3]) or not _is_number(fields[4]):
        raise KasaliasError(f"{path}:{lineno}: malformed index line")
    start, length = int(fields[3]), int(fields[4])
    if not 0 < start <= start + length <= os.fstat(f.fileno()).st_size:  # before a read of 10^15 bytes
        raise KasaliasError(f"{path}:{lineno}: the index line of {image} does not point at its rows")
    f.seek(start - 1)
    block = f.read(length + 1)
    if len(block) != length + 1 or (length and not (block.startswith(b"\n" + name + b"\t") and
                                                    block.endswith(b"\n"))):
        raise KasaliasError(f"{path}:{lineno}: the index line of {image} does not point at its rows")
    # Row line numbers are not known without reading what comes before: report the index's.
    return placement, [(lineno, b"# image: " + name), *((lineno, line) for line in block[1:].splitlines())]


