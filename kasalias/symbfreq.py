"""Symbol frequency: how often each name occurs in kallsyms over vmlinux and all modules.

``modules.symbfreq`` holds one ``name:count`` line per name, sorted by name
(bytewise), so that modules built later, out of tree, can tell which of their
names collide with the kernel's. Such a module looks up its own names alone
(lookup(): a binary search in the mapped file): a distribution's table is 22 MB,
and reading all of it cost 20 times the rest of the module's step.
"""

from __future__ import annotations

import mmap
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from kasalias.errors import KasaliasError
from kasalias.fsutil import open_input, read_input, write_atomic

_LLVM_SUFFIX = re.compile(r"\.llvm\.\d+$")


def name_key(name: str) -> str:
    """The name as kallsyms users match it: ThinLTO's ``.llvm.<hash>`` promotion suffix
    is not part of it (the kernel's cleanup_symbol_name() drops it too)."""
    if ".llvm." not in name:  # nearly every name: no regular expression to run
        return name
    return _LLVM_SUFFIX.sub("", name)


class SymbolFrequency:
    def __init__(self, counts: Counter[str] | None = None) -> None:
        self.counts: Counter[str] = counts if counts is not None else Counter()

    def add(self, names: Iterable[str]) -> None:
        self.counts.update(map(name_key, names))

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name_key(name), 0)

    def render(self) -> bytes:
        counts = self.counts
        if "".join(counts).isascii():
            # ASCII: the order of the str is the bytewise one, and sorting names alone is
            # twice as fast as sorting (bytes, count) tuples.
            return "".join([f"{n}:{counts[n]}\n" for n in sorted(counts)]).encode("ascii")
        items = sorted((n.encode("utf-8", "surrogateescape"), c) for n, c in counts.items())
        return b"".join(b"%s:%d\n" % (n, c) for n, c in items)

    def write(self, path: Path) -> bool:
        return write_atomic(path, self.render(), only_if_changed=True)

    @classmethod
    def read(cls, path: Path) -> SymbolFrequency:
        data = read_input(path)
        counts: Counter[str] = Counter()
        for lineno, line in enumerate(data.splitlines(), 1):
            name, sep, count = line.rpartition(b":")
            if not sep or not name or not _is_count(count):
                raise KasaliasError(f"{path}:{lineno}: not a 'name:count' line")
            counts[name.decode("utf-8", "surrogateescape")] = int(count)
        return cls(counts)


def lookup(path: Path, names: Iterable[str]) -> SymbolFrequency:
    """The counts that the frequency file ``path`` holds for ``names`` alone (a name it does
    not hold counts 0), found by binary search in the mapped file."""
    try:
        with open_input(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return SymbolFrequency()
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                keys = sorted({name_key(n).encode("utf-8", "surrogateescape") for n in names})
                counts: Counter[str] = Counter()
                _search_all(data, keys, 0, len(keys), 0, size, counts, path)
                return SymbolFrequency(counts)
    except OSError as e:
        raise KasaliasError(f"{path}: cannot read: {e.strerror}") from None
    except ValueError as e:  # not a regular file that can be mapped
        raise KasaliasError(f"{path}: cannot read: {e}") from None


def _search_all(data: mmap.mmap, keys: list[bytes], i: int, j: int, lo: int, hi: int,
                counts: Counter[str], path: Path) -> None:
    """Look up the sorted ``keys[i:j]``, whose lines all start in [lo, hi) if present: the
    middle key first, then each half in its side of the file only (a module's few hundred
    names take about two thirds of the steps of separate searches)."""
    while i < j:
        m = (i + j) // 2
        count, start, end = _search(data, lo, hi, keys[m], path)
        if count:
            counts[keys[m].decode("utf-8", "surrogateescape")] = count
        _search_all(data, keys, i, m, lo, start, counts, path)
        i, lo = m + 1, end  # the right half, without a call (recursion depth: log2 of the names)


def _is_count(count: bytes) -> bool:
    """ASCII digits (bytes.isdigit() takes no others), few enough for int(): it refuses more
    than 4,300 digits with a ValueError."""
    return count.isdigit() and len(count) <= 18


def _search(data: mmap.mmap, lo: int, hi: int, key: bytes, path: Path) -> tuple[int, int, int]:
    """(count, start, after) for ``key`` in the lines starting in [lo, hi) (lo at a line's
    start): its line's start and the start of the next; if absent, count 0 and both the
    position where its line would start."""
    size = len(data)
    while lo < hi:  # the key's line, if any, starts in [lo, hi)
        mid = (lo + hi) // 2
        start = data.rfind(b"\n", lo, mid) + 1 or lo
        end = data.find(b"\n", start)
        if end < 0:
            end = size
        name, sep, count = data[start:end].rpartition(b":")
        if not sep or not name or not _is_count(count):
            raise KasaliasError(f"{path}: byte {start}: not a 'name:count' line")
        if name == key:
            return int(count), start, end + 1
        if name < key:
            lo = end + 1
        else:
            hi = start
    return 0, lo, lo
