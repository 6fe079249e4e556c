"""The alias table's per-image lookup (what a module step reads) on tables of distribution size."""

from __future__ import annotations

from pathlib import Path

import pytest

from kasalias.aliastable import _HEAD_SIZE, AliasRow, AliasTable
from kasalias.errors import KasaliasError


def _names(n: int) -> list[str]:
    """Module names like a distribution's, many of them prefixes of others (max1111, max11100)."""
    out = []
    for i in range(n):
        out.append(f"max{i}")
        if i % 3 == 0:
            out.append(f"max{i}0_spi")
    return out


def _table(images: list[str]) -> AliasTable:
    rows = []
    for k, image in enumerate(images):
        for j in range(k % 4):  # some images with nothing to alias, some with several rows
            rows.append(AliasRow(image, "core.c", j, f"fn{j}", 0, f"fn{j}@drivers_{image}_c_{j + 1}",
                                 f"drivers/{image}.c:{j + 1}", f"drivers/{image}.c"))
    return AliasTable(rows, images)


def _index_end(data: bytes) -> int:
    """Where the first image's rows begin: the offset on the first index line."""
    first = data.index(b"\n# image: ") + 1
    return int(data[first:data.index(b"\n", first)].split(b" ")[3])


def _straddling(data: bytes) -> list[str]:
    """The images whose index lines cross a 64 KiB boundary of the file."""
    out = []
    pos = 0
    for line in data[:_index_end(data)].splitlines(keepends=True):
        if pos // (1 << 16) != (pos + len(line) - 1) // (1 << 16):
            out.append(line.split(b" ")[2].decode())
        pos += len(line)
    return out


def test_every_image_of_a_large_table(tmp_path: Path) -> None:
    images = _names(5000)
    table = _table(images)
    path = tmp_path / "modules.symalias"
    table.write(path)
    data = path.read_bytes()
    # The index is several read buffers long, and index lines straddle every buffer boundary.
    assert _index_end(data) > 3 * (1 << 16)
    straddling = _straddling(data)
    assert len(straddling) >= 3
    full = AliasTable.read(path)
    for image in images:
        one = AliasTable.read(path, only_image=image)
        assert one.images == {image}, image
        assert one.rows == full.for_image(image), image
    for image in straddling:  # named explicitly: the lines the old 64 KiB head cut in two
        assert AliasTable.read(path, only_image=image).images == {image}
    assert AliasTable.read(path, only_image="max").images == frozenset()  # a prefix of every name


PARTS = ("prefix", "name", "offset", "length", "newline")


def _part_at(data: bytes, pos: int) -> tuple[str, str]:
    """(image, part of its index line) of the byte at ``pos``; the space after a field
    counts with it."""
    start = data.rfind(b"\n", 0, pos) + 1
    line = data[start:data.index(b"\n", start) + 1]
    name = line.split(b" ")[2]
    k = pos - start
    ends = [len(b"# image: "), len(b"# image: ") + len(name) + 1, len(b"# image: ") + len(name) + 12, len(line) - 1]
    return name.decode(), next((p for p, end in zip(PARTS, ends) if k < end), "newline")


@pytest.fixture(scope="module")
def shift_for_part() -> dict[str, int]:
    """For each part of an index line, a length of the first image name that puts the last
    byte of the first read (_HEAD_SIZE) in that part of a line."""
    out: dict[str, int] = {}
    for shift in range(48):  # more than an index line's length: every byte of a line in turn
        data = _table(["a" * (shift + 1), *_names(2000)]).render()
        out.setdefault(_part_at(data, _HEAD_SIZE - 1)[1], shift)
        if len(out) == len(PARTS):
            break
    return out


@pytest.mark.parametrize("part", PARTS)
def test_boundary_at_every_place_of_a_line(tmp_path: Path, part: str, shift_for_part: dict[str, int]) -> None:
    """The end of the first read lies in each part of an index line in turn (a first image
    name of another length moves it): the images whose lines hold the last byte of that read
    and the first byte after it are read through the index."""
    assert part in shift_for_part, shift_for_part  # the case exists: the test cannot pass by doing nothing
    images = ["a" * (shift_for_part[part] + 1), *_names(2000)]
    path = tmp_path / "modules.symalias"
    _table(images).write(path)
    data = path.read_bytes()
    last, where = _part_at(data, _HEAD_SIZE - 1)
    assert where == part
    after = _part_at(data, _HEAD_SIZE)[0]
    assert _index_end(data) > _HEAD_SIZE
    full = AliasTable.read(path)
    for image in {last, after}:
        one = AliasTable.read(path, only_image=image)
        assert one.images == {image} and one.rows == full.for_image(image), image


def test_truncated_index_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "modules.symalias"
    _table(_names(5000)).write(path)
    path.write_bytes(path.read_bytes()[: 100_000])
    with pytest.raises(KasaliasError, match="truncated alias table"):
        AliasTable.read(path, only_image="max4999")


def _row(**fields: object) -> AliasRow:
    row: dict[str, object] = dict(image="minix", file="core.c", occurrence=0, symbol="fn", ordinal=0,
                                  alias="fn@fs_minix_core_c_1", decl="fs/minix/core.c:1", cu="fs/minix/core.c")
    row.update(fields)
    return AliasRow(**row)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["occurrence", "ordinal"])
@pytest.mark.parametrize("value", ["²", "٣", "１", "1" * 5000, "-1", " 1"])
def test_number_fields_are_ascii_digits(tmp_path: Path, field: str, value: str) -> None:
    """A row's occurrence and ordinal: ASCII digits, as many as int() takes. str.isdigit() also
    takes '²' (int() refuses it: a traceback) and '٣' and '１' (int() reads 3 and 1), and int()
    refuses 4,301 digits. The table is rendered by the writer, so its index fits the row and
    the module step's read (only_image) reaches the row too."""
    path = tmp_path / "modules.symalias"
    path.write_bytes(AliasTable([_row(**{field: value})], ["minix"]).render())
    for only in (None, "minix"):
        with pytest.raises(KasaliasError, match="malformed alias table row"):
            AliasTable.read(path, only_image=only)


@pytest.mark.parametrize("image", ["a", "b"])  # the first index line (where the index ends) or another
@pytest.mark.parametrize("field,value,error", [
    ("offset", b"1000000000000000", "does not point at its rows|truncated alias table"),
    ("length", b"1000000000000000", "does not point at its rows"),
    ("offset", b"0000000000", "does not point at its rows|malformed index line"),
    ("offset", b"9" * 5000, "malformed index line"),
    ("length", b"9" * 5000, "malformed index line"),
    ("offset", "000000033²".encode(), "malformed index line"),
    ("length", "٣".encode(), "malformed index line"),
])
def test_index_numbers_are_bounded(tmp_path: Path, image: str, field: str, value: bytes, error: str) -> None:
    """An index line's offset and length are checked against the file's size before a read:
    a length of 10^15 was a MemoryError (f.read(10^15)); 5,000 digits a ValueError from int()."""
    path = tmp_path / "modules.symalias"
    rows = [_row(image=i, alias=f"fn@drivers_{i}_c_1") for i in ("a", "b", "c")]
    data = AliasTable(rows).render()
    start = data.index(b"\n# image: %s " % image.encode()) + 1
    end = data.index(b"\n", start)
    fields = data[start:end].split(b" ")
    fields[3 if field == "offset" else 4] = value
    path.write_bytes(data[:start] + b" ".join(fields) + data[end:])
    with pytest.raises(KasaliasError, match=error):
        AliasTable.read(path, only_image=image)
