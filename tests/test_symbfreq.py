"""modules.symbfreq: the out-of-tree step's lookup of its own names equals reading the whole file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from kasalias.errors import KasaliasError
from kasalias.symbfreq import SymbolFrequency, lookup


def test_lookup_equals_full_read(analysis5: Path) -> None:
    path = analysis5 / "modules.symbfreq"
    full = SymbolFrequency.read(path).counts
    assert len(full) > 50
    names = sorted(full)
    absent = ["", "!", "~~~", names[0][:-1], names[-1] + "x", "name_show.llvm.123x"]
    got = lookup(path, [*names, *absent, "name_show.llvm.42"]).counts
    assert got == full  # absent names count 0 and are left out; the .llvm. suffix is not part of a name


def test_lookup_large_file(tmp_path: Path) -> None:
    counts = Counter({f"sym_{i:06d}": i % 7 + 1 for i in range(0, 200_000, 3)})
    path = tmp_path / "modules.symbfreq"
    SymbolFrequency(counts).write(path)
    wanted = [f"sym_{i:06d}" for i in range(0, 200_000, 1)]
    got = lookup(path, wanted).counts
    assert got == counts


def test_lookup_malformed(tmp_path: Path) -> None:
    path = tmp_path / "modules.symbfreq"
    path.write_bytes(b"a:1\nb 2\nc:3\n")
    with pytest.raises(KasaliasError, match="not a 'name:count' line"):
        lookup(path, ["b"])
