"""Writing an ELF file from an opened one: its sections in their old order, some with new
bytes (``layout``). The module writer (modwriter) and the BTF step (fentry) write this way:
the unchanged parts are views of the input, so no copy of a file is made in memory."""

from __future__ import annotations

import struct

from kasalias.symbols import ELF64_SHDR, ElfImage


def with_section(img: ElfImage, index: int, data: bytes) -> list[bytes | bytearray | memoryview]:
    """The object ``img`` with section ``index`` holding ``data`` and no program headers:
    vmlinux's BTF object at its link (kasalias.fentry), which objcopy cut out of an executable
    with them; an ET_REL link input has no use for them, and its sections move."""
    header = bytearray(img.header)
    struct.pack_into("<Q", header, 0x20, 0)  # e_phoff
    struct.pack_into("<HH", header, 0x36, 0, 0)  # e_phentsize, e_phnum
    return layout(img, {index: data}, {}, bytes(header))


def layout(img: ElfImage, content: dict[int, bytes | bytearray | memoryview],
           info: dict[int, int], elf_header: bytes | None = None) -> list[bytes | bytearray | memoryview]:
    """The file: the ELF header (``elf_header``, else the image's), the sections in their old
    file order (each at its alignment; ``content`` replaces a section's bytes), then the
    section header table."""
    sections = img.sections
    parts: list[bytes | bytearray | memoryview] = [b""]  # the ELF header, filled in last
    offsets = [0] * len(sections)
    sizes = [s.size for s in sections]
    pos = len(img.header)
    for sec in sorted(sections[1:], key=lambda s: (s.offset, s.index)):
        data = content.get(sec.index)
        if data is None:
            data = img.section_view(sec)  # empty for SHT_NOBITS
        else:
            sizes[sec.index] = len(data)
        if data:
            pad = -pos % max(sec.align, 1)
            parts.append(bytes(pad))
            pos += pad
        offsets[sec.index] = pos
        parts.append(data)
        pos += len(data)
    pad = -pos % 8
    parts.append(bytes(pad))
    shoff = pos + pad
    for sec in sections:  # section 0 too: with many sections it holds their number
        parts.append(ELF64_SHDR.pack(sec.name_offset, sec.type, sec.flags, sec.addr, offsets[sec.index],
                                sizes[sec.index], sec.link, info.get(sec.index, sec.info), sec.align,
                                sec.entsize))
    header = bytearray(img.header if elf_header is None else elf_header)
    struct.pack_into("<Q", header, 0x28, shoff)  # e_shoff
    parts[0] = bytes(header)
    return parts
