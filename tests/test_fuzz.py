"""Hostile input: every verb on real sample-tree inputs mutated by a seeded fuzzer; the cases a
random byte seldom makes, by hand (line-table and abbreviation counts the bytes cannot hold,
Unicode digits and other non-ASCII in each text field, absurd lengths, odd modules.order lines,
analysis caches of another shape); the hostile structures by hand (FIFOs, directories, outputs
that are inputs, read-only places, signals).

The promise is the assertion: one 'kasalias: error: ...' line and a non-zero exit, or a
written output; never a traceback, a hang, a partial or leftover file, or a changed input.
Cases run in this process (kasalias.cli.main), each under a time limit; KASALIAS_FUZZ_CASES
sets how many per verb (CI: the default), KASALIAS_FUZZ_SEED the seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from conftest import Build, run_kasalias
from kasalias.aliastable import AliasTable
from kasalias.cli import main
from kasalias.index import parse_kallsyms
from kasalias.symbfreq import SymbolFrequency

CASES = int(os.environ.get("KASALIAS_FUZZ_CASES", "150"))
SEED = int(os.environ.get("KASALIAS_FUZZ_SEED", "20261130"))
LIMIT_S = 20  # per case: far above any real run on these small inputs


class Hang(Exception):
    pass


@dataclass
class Outcome:
    rc: int
    stderr: str


def run_in_process(argv: list[str]) -> Outcome:
    """kasalias.cli.main(argv), its stderr captured, under a time limit: an exception other
    than SystemExit (argparse) escaping main() is a traceback a user would see."""
    def expired(_sig: int, _frame: object) -> None:
        raise Hang(" ".join(argv))

    err = io.StringIO()
    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(argv)
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return Outcome(rc, err.getvalue())


def digest(paths: list[Path]) -> dict[Path, str]:
    out = {}
    for p in paths:
        st = os.lstat(p)
        out[p] = hashlib.sha256(p.read_bytes()).hexdigest() + str(st.st_mtime_ns) if stat.S_ISREG(st.st_mode) \
            else str(st.st_mode)
    return out


def check(argv: list[str], inputs: list[Path], outputs: list[Path], workdir: Path) -> Outcome:
    """Run one case and assert the promise."""
    before = digest(inputs)
    listing = sorted(os.listdir(workdir))
    o = run_in_process([str(a) for a in argv])
    lines = o.stderr.splitlines()
    errors = [l for l in lines if l.startswith("kasalias: error: ")]
    assert "Traceback" not in o.stderr, (argv, o.stderr)
    if o.rc == 0:
        assert all(p.is_file() for p in outputs), (argv, o.stderr)
    else:
        assert len(errors) == 1 and lines[-1] == errors[0], (argv, o.rc, o.stderr)
        for p in outputs:
            assert p in before or not os.path.lexists(p), (argv, "output left after an error", p)
        assert not [l for l in lines if l.startswith("kasalias: error:") and "\r" in l]
    assert digest(inputs) == before, (argv, "an input changed")
    new = set(os.listdir(workdir)) - set(listing)
    assert new <= {p.name for p in outputs}, (argv, "left behind", new)
    return o


# ---------------------------------------------------------------------------
# Mutators

EXTREMES = (0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 62, (1 << 63) - 1, (1 << 64) - 1)


def _elf_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of the ELF header's and section headers' fields, of .symtab entries'."""
    fields = [(0x18, 8), (0x20, 8), (0x28, 8), (0x12, 2), (0x3A, 2), (0x3C, 2), (0x3E, 2), (0x04, 1), (0x05, 1)]
    if len(data) < 64:
        return fields
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    for i in range(min(shnum, 4096)):
        base = shoff + 64 * i
        if base + 64 > len(data):
            break
        fields += [(base + off, w) for off, w in ((0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 4),
                                                   (44, 4), (48, 8), (56, 8))]
        sh_type, = struct.unpack_from("<I", data, base + 4)
        if sh_type == 2:  # .symtab: some entries
            off, size = struct.unpack_from("<QQ", data, base + 24)
            for e in range(0, min(size // 24, 400), 7):
                fields += [(off + 24 * e, 4), (off + 24 * e + 4, 1), (off + 24 * e + 6, 2), (off + 24 * e + 8, 8),
                           (off + 24 * e + 16, 8)]
    return [(o, w) for o, w in fields if o + w <= len(data)]


def _sections(data: bytes) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of the sections, where the headers can be read."""
    out: dict[str, tuple[int, int]] = {}
    try:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
        hdr = lambda i: struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * i)  # noqa: E731
        names_off = hdr(shstrndx)[4]
        for i in range(shnum):
            h = hdr(i)
            end = data.index(b"\0", names_off + h[0])
            out[data[names_off + h[0]:end].decode("latin-1")] = (h[4], h[5])
    except (struct.error, ValueError, IndexError):
        pass
    return out


def mutate_elf(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:  # truncated
        return bytes(buf[:rng.randrange(len(buf))])
    if kind == 1:  # a header or symbol field set to an extreme or random value
        for _ in range(rng.randint(1, 3)):
            off, width = rng.choice(_elf_fields(data))
            value = rng.choice(EXTREMES) if rng.random() < 0.7 else rng.getrandbits(8 * width)
            buf[off:off + width] = (value & ((1 << 8 * width) - 1)).to_bytes(width, "little")
        return bytes(buf)
    secs = _sections(data)
    if kind in (2, 3) and secs:  # bytes flipped inside a DWARF or string section
        names = [n for n in secs if n.startswith((".debug_", ".rela.debug_")) or n in (".strtab", ".symtab")]
        name = rng.choice(names or list(secs))
        off, size = secs[name]
        for _ in range(rng.randint(1, 16)):
            if size and off + size <= len(buf):
                i = off + rng.randrange(size)
                buf[i] = rng.randrange(256) if kind == 2 else rng.choice(b"\0\x01\x1f\x7f\xff\r\n\t ")
        return bytes(buf)
    if kind == 4 and ".strtab" in secs:  # a symbol name with a control byte, a space or invalid UTF-8
        off, size = secs[".strtab"]
        if size > 2 and off + size <= len(buf):
            i = off + 1 + rng.randrange(size - 2)
            if buf[i]:
                buf[i] = rng.choice(b"\x01\x1b\r\n \xff\xc3")
        return bytes(buf)
    for _ in range(rng.randint(1, 32)):  # anywhere
        buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


# What a text field is set to: numbers int() refuses or misreads (Unicode digits: '²' passes
# str.isdigit(), '٣' and '１' read as 3 and 1; more digits than int() takes; a length of 10^15),
# other non-ASCII and bytes that are not UTF-8 or are control bytes.
FIELD_VALUES = [b"", b"-1", b"99999999999999999999", b"x" * 600, b"\xff", b"a b", b"0x", "²".encode(),
                "٣".encode(), "１".encode(), "é".encode(), "\u2028".encode(), "\u00a0".encode(), b"1" * 5000,
                b"1000000000000000", b"0", b"\x1b[31m"]


def mutate_text(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    kind = rng.randrange(7)
    i = rng.randrange(len(lines))
    if kind == 0:
        return data[:rng.randrange(len(data) + 1)]
    if kind == 1:
        del lines[i]
    elif kind == 2:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif kind == 3:
        lines[i] = lines[i] + rng.choice([b"\xff\xfe", b"\r", b"\0", b" x", b"\t", b"\x1b[31m"])
    elif kind == 4:
        sep = next((c for c in (b"\t", b" ", b":") if c in lines[i]), b"\t")
        fields = lines[i].split(sep)
        j = rng.randrange(len(fields))
        fields[j] = rng.choice(FIELD_VALUES)
        lines[i] = sep.join(fields)
    elif kind == 5:
        lines[i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    else:
        lines = [l for l in lines if rng.random() < 0.5]
    return b"\n".join(lines)


# ---------------------------------------------------------------------------
# The verbs


@pytest.fixture(scope="module")
def inputs(build5: Build, analysis5: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fuzz-inputs")
    syms = d / "vmlinux.syms"
    syms.write_bytes(subprocess.run(["nm", "-n", str(build5.vmlinux)], check=True, capture_output=True).stdout)
    # a /proc/kallsyms with aliases, for 'probe': vmlinux's nm lines and an alias after every text one
    kallsyms = d / "kallsyms"
    kallsyms.write_text("".join(f"{line}\n" + (f"{line}@fuzz_c_{n}\n" if line.split()[1] in "tT" else "")
                                for n, line in enumerate(syms.read_text().splitlines())))
    index = d / "kasalias.index"  # 'kasalias index' over vmlinux and minix, for lookup and kallsyms
    run_kasalias("index", "--vmlinux", build5.vmlinux, "--module", build5.ko("minix"), "--srctree", build5.srctree,
                 "-o", index)
    # vmlinux's BTF as 6.x's gen_btf cuts it out (pahole on a copy, then objcopy), for 'btf' and 'syms --btf'
    btf_src, btf_o = d / "vmlinux.pahole", d / "vmlinux.btf.o"
    shutil.copy2(build5.vmlinux, btf_src)
    subprocess.run(["pahole", "-J", str(btf_src)], check=True, capture_output=True)
    subprocess.run(["objcopy", "--only-section=.BTF", "--strip-all", str(btf_src), str(btf_o)], check=True,
                   capture_output=True)
    files = {"ko": build5.ko("minix"), "vmlinux.o": build5.vmlinux_o, "vmlinux": build5.vmlinux, "btf.o": btf_o,
             "btf.vmlinux": btf_src, "kallsyms": kallsyms,
             "table": analysis5 / "modules.symalias", "symbfreq": analysis5 / "modules.symbfreq", "syms": syms,
             "order": build5.objtree / "modules.order", "index": index}
    (d / "orig").mkdir()
    out = {k: Path(shutil.copy2(v, d / "orig" / v.name)) for k, v in files.items()}
    # minix.ko with its split BTF made on that vmlinux's, as Makefile.modfinal makes it, for 'module --btf-base'
    (d / "btf").mkdir()
    out["btf.ko"] = Path(shutil.copy2(build5.ko("minix"), d / "btf" / "minix.ko"))
    subprocess.run(["pahole", "-J", "--btf_base", str(btf_src), str(out["btf.ko"])], check=True, capture_output=True)
    return out


@dataclass
class Verb:
    """How a verb is run on one case's files; ``target`` names the input the fuzzer mutates."""

    name: str
    target: str
    argv: Callable[[dict[str, Path], Path], list[object]]
    outputs: Callable[[Path], list[Path]]
    valid: Callable[[Path], object] = lambda w: None  # raises if what was written is not correct
    share: int = 1  # runs CASES // share cases (a verb that reads every image per case is slower)


def _tables_read_back(w: Path) -> None:
    """What analyze wrote is what its readers take (it once wrote rows AliasTable.read refused)."""
    table = AliasTable.read(w / "modules.symalias")
    for image in table.images:
        assert AliasTable.read(w / "modules.symalias", only_image=image).rows == table.for_image(image)
    SymbolFrequency.read(w / "modules.symbfreq")


def _kallsyms_text(w: Path) -> None:
    """The kallsyms text with aliases is kallsyms text: UTF-8, each name printable."""
    lines = parse_kallsyms((w / "k.txt").read_bytes(), "k.txt")
    assert all(l.name.isprintable() for l in lines)


VERBS = [
    Verb("module", "ko", lambda f, w: ["module", "--aliases", f["table"], f["ko"], w / "out.ko"],
         lambda w: [w / "out.ko"]),
    Verb("module-table", "table", lambda f, w: ["module", "--aliases", f["table"], f["ko"], w / "out.ko"],
         lambda w: [w / "out.ko"]),
    Verb("module-out-of-tree", "symbfreq",
         lambda f, w: ["module", "--aliases", f["table"], "--symbfreq", f["symbfreq"], f["ext.ko"], w / "out.ko"],
         lambda w: [w / "out.ko"]),
    Verb("module-out-of-tree-elf", "ext.ko",
         lambda f, w: ["module", "--aliases", f["table"], "--symbfreq", f["symbfreq"], f["ext.ko"], w / "out.ko"],
         lambda w: [w / "out.ko"]),
    Verb("syms", "syms", lambda f, w: ["syms", "--aliases", f["table"], "--image", f["vmlinux"], f["syms"],
                                       w / "out.syms"], lambda w: [w / "out.syms"]),
    Verb("syms-table", "table", lambda f, w: ["syms", "--aliases", f["table"], "--image", f["vmlinux"], f["syms"],
                                              w / "out.syms"], lambda w: [w / "out.syms"]),
    Verb("syms-image", "vmlinux", lambda f, w: ["syms", "--aliases", f["table"], "--image", f["vmlinux"],
                                                f["syms"], w / "out.syms"], lambda w: [w / "out.syms"]),
    Verb("btf", "btf.o", lambda f, w: ["btf", "--aliases", f["table"], "--dwarf", f["vmlinux"], f["btf.o"],
                                       w / "out.btf"], lambda w: [w / "out.btf"], share=5),
    Verb("btf-image", "vmlinux", lambda f, w: ["btf", "--aliases", f["table"], "--dwarf", f["vmlinux"], f["btf.o"],
                                               w / "out.btf"], lambda w: [w / "out.btf"], share=5),
    Verb("syms-btf", "btf.o", lambda f, w: ["syms", "--aliases", f["table"], "--image", f["vmlinux"], "--btf",
                                            f["btf.o"], f["syms"], w / "out.syms"], lambda w: [w / "out.syms"], share=5),
    Verb("module-btf", "btf.ko", lambda f, w: ["module", "--aliases", f["table"], "--btf-base", f["btf.vmlinux"],
                                               f["btf.ko"], w / "out.ko"], lambda w: [w / "out.ko"]),
    Verb("module-btf-base", "btf.vmlinux", lambda f, w: ["module", "--aliases", f["table"], "--btf-base",
                                                         f["btf.vmlinux"], f["btf.ko"], w / "out.ko"],
         lambda w: [w / "out.ko"], share=5),
    Verb("report", "vmlinux", lambda f, w: ["report", "--vmlinux", f["vmlinux"], "--module", f["ko"], "--data",
                                            "--json", "-o", w / "report.json"], lambda w: [w / "report.json"]),
    Verb("report-module", "ko", lambda f, w: ["report", "--vmlinux", f["vmlinux"], "--module", f["ko"], "--data",
                                              "-o", w / "report.txt"], lambda w: [w / "report.txt"]),
    Verb("probe", "kallsyms", lambda f, w: ["probe", "--for", "perf", "--kallsyms", f["kallsyms"], "*@fuzz_c_1*"],
         lambda w: []),
    Verb("analyze", "vmlinux.o", lambda f, w: ["analyze", "--vmlinux", f["vmlinux.o"], "--module", f["ko"], "--data",
                                               "-o", w], lambda w: [w / "modules.symbfreq", w / "modules.symalias"],
         _tables_read_back),
    Verb("analyze-order", "order", lambda f, w: ["analyze", "--vmlinux", f["vmlinux.o"], "--modules-order", f["order"],
                                                 "--objtree", f["objtree"], "-o", w],
         lambda w: [w / "modules.symbfreq", w / "modules.symalias"], _tables_read_back, share=5),
    Verb("kallsyms-index", "index", lambda f, w: ["kallsyms", "--index", f["index"], "--kallsyms", f["kallsyms"],
                                                  "-o", w / "k.txt"], lambda w: [w / "k.txt"], _kallsyms_text),
    Verb("lookup-index", "index", lambda f, w: ["lookup", "--index", f["index"], "--kallsyms", f["kallsyms"],
                                                "name_show@drivers_base_power_wakeup_stats_c_33"], lambda w: []),
]


def case_files(inputs: dict[str, Path], work: Path, target: str, data: bytes, objtree: Path) -> dict[str, Path]:
    """The inputs of one case, ``target`` holding ``data``; ``objtree``: where modules.order's
    paths lead (build5's, read only)."""
    files = {}
    for k, p in inputs.items():
        files[k] = p
    files["objtree"] = objtree
    files["ext.ko"] = inputs["ko"]
    dst = work / ("ext_minix.ko" if target == "ext.ko" else inputs[target].name)
    dst.write_bytes(data)
    files[target] = dst
    if target != "ext.ko":  # the out-of-tree verbs take the module under a name the table does not know
        ext = work / "ext_minix.ko"
        shutil.copy2(inputs["ko"], ext)
        files["ext.ko"] = ext
    return files


def _inputs_of(files: dict[str, Path]) -> list[Path]:
    return [p for k, p in files.items() if k != "objtree" and p.exists()]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v.name)
def test_fuzzed_inputs(verb: Verb, inputs: dict[str, Path], build5: Build, tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}-{verb.name}")
    original = inputs[verb.target if verb.target != "ext.ko" else "ko"].read_bytes()
    elf = original.startswith(b"\x7fELF")
    ok = 0
    cases = CASES // verb.share
    for n in range(-1, cases):  # case -1: the input as it is, which must work
        work = tmp_path / f"c{n}"
        work.mkdir()
        data = original if n < 0 else mutate_elf(original, rng) if elf else mutate_text(original, rng)
        files = case_files(inputs, work, verb.target, data, build5.objtree)
        argv = verb.argv(files, work)
        o = check(argv, _inputs_of(files), verb.outputs(work), work)
        assert n >= 0 or o.rc == 0, (argv, o.stderr)
        if o.rc == 0:
            verb.valid(work)
        ok += o.rc == 0
        shutil.rmtree(work)
    print(f"{verb.name}: {cases} cases, {ok - 1} written")


# ---------------------------------------------------------------------------
# The fuzz findings, by hand: each case reaches the check it is about (a random byte seldom
# makes a count that a header's bytes cannot hold, or a Unicode digit in a number field).


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


# Sizes of the forms GCC and clang use in DWARF 5 line-table entry formats: line_strp, strp,
# data1/2/4/8, data16 (MD5); udata and string are read by kind.
_LINE_FORM_SIZES = {0x1F: 4, 0x0E: 4, 0x0B: 1, 0x05: 2, 0x06: 4, 0x07: 8, 0x1E: 16}


def _line_header_fields(data: bytes) -> list[tuple[int, int, int, int]]:
    """For each DWARF 5 line-table header of .debug_line, the file offsets of its
    directory_entry_format_count, directories_count, file_name_entry_format_count and
    file_names_count."""
    off, size = _sections(data)[".debug_line"]
    out = []
    pos = off
    while pos + 4 <= off + size:
        length, version = struct.unpack_from("<IH", data, pos)
        if version >= 5:
            p = pos + 4 + 2 + 2 + 4 + 4  # length, version, address/selector sizes, header_length, 4 bytes
            p = p + 2 + data[p + 1] - 1  # line_range, opcode_base, standard_opcode_lengths
            fields = []
            for _table in range(2):
                fields.append(p)
                forms = []
                n, p = data[p], p + 1
                for _ in range(n):
                    _ct, p = _read_uleb(data, p)
                    form, p = _read_uleb(data, p)
                    forms.append(form)
                fields.append(p)
                count, p = _read_uleb(data, p)
                for _ in range(count):
                    for form in forms:
                        if form == 0x0F:
                            p = _read_uleb(data, p)[1]
                        elif form == 0x08:
                            p = data.index(b"\0", p) + 1
                        else:
                            p += _LINE_FORM_SIZES[form]
            out.append((fields[0], fields[1], fields[2], fields[3]))
        pos += 4 + length
    return out


def _unrelocated(buf: bytearray, data: bytes, section: str, lo: int, hi: int) -> None:
    """The relocations of ``section``'s bytes at file offsets [lo, hi) made R_*_NONE: kasalias
    applies a relocatable file's relocations itself, and would write over a mutation there."""
    secs = _sections(data)
    if ".rela" + section not in secs:
        return
    base = secs[section][0]
    roff, rsize = secs[".rela" + section]
    for e in range(roff, roff + rsize - rsize % 24, 24):
        r_offset, r_info = struct.unpack_from("<QQ", data, e)
        if lo <= base + r_offset < hi:
            struct.pack_into("<Q", buf, e + 8, r_info & ~0xFFFFFFFF)


def line_header_mutation(data: bytes, field: int, new: bytes) -> bytes:
    """``new`` written at field ``field`` (as _line_header_fields lists them) of every DWARF 5
    line-table header (over what follows it when longer)."""
    buf = bytearray(data)
    for fields in _line_header_fields(data):
        at = fields[field]
        buf[at:at + len(new)] = new
        _unrelocated(buf, data, ".debug_line", at, at + len(new))
    return bytes(buf)


def abbrev_mutation(data: bytes) -> bytes:
    """.debug_abbrev as one declaration (code 1, a variable) of as many (DW_AT_decl_line,
    DW_FORM_udata) attributes as the section holds: the (0, 0) terminators of a table gone."""
    off, size = _sections(data)[".debug_abbrev"]
    n = (size - 6) // 2
    return data[:off] + b"\x01\x34\x00" + b"\x3b\x0f" * n + b"\0\0\0" + b"\0" * (size - 6 - 2 * n) \
        + data[off + size:]


def file_symbol_mutation(data: bytes, byte: int) -> bytes:
    """The first byte of every STT_FILE symbol's name (the object's basename, a field of the
    alias table's rows) set to ``byte``."""
    buf = bytearray(data)
    secs = _sections(data)
    (symoff, symsize), stroff = secs[".symtab"], secs[".strtab"][0]
    for e in range(symoff, symoff + symsize, 24):
        name, info = struct.unpack_from("<IB", data, e)
        if info & 0xF == 4 and name:  # STT_FILE
            buf[stroff + name] = byte
    return bytes(buf)


def string_mutation(data: bytes, section: str, byte: int) -> bytes:
    """Every 7th byte of a string section (not a NUL or '/') set to ``byte``: DWARF 5 keeps
    file and directory names in .debug_line_str."""
    buf = bytearray(data)
    off, size = _sections(data)[section]
    k = 0
    for i in range(off, off + size):
        if data[i] not in b"\0/":
            k += 1
            if k % 7 == 0:
                buf[i] = byte
    return bytes(buf)


_VERB = {v.name: v for v in VERBS}
# (verb, the input it reads DWARF from): analyze, report and the out-of-tree module step
_DWARF_READERS = (("analyze", "vmlinux.o"), ("report", "vmlinux"), ("module-out-of-tree-elf", "ext.ko"))


def _run_verb(verb: str, target: str, data: bytes, inputs: dict[str, Path], objtree: Path, work: Path) -> Outcome:
    v = _VERB[verb]
    work.mkdir()
    files = case_files(inputs, work, target, data, objtree)
    return check(v.argv(files, work), _inputs_of(files), v.outputs(work), work)


LINE_HEADER_CASES = {  # name: (field, bytes written there, what the error says)
    "no directory formats, 2^40 directories": (0, b"\0" + _uleb(1 << 40), "lists 1099511627776 directories"),
    "2^40 directories": (1, _uleb(1 << 40), "lists 1099511627776 directories"),
    "no file formats, 2^40 files": (2, b"\0" + _uleb(1 << 40), "lists 1099511627776 files"),
    "2^40 files": (3, _uleb(1 << 40), "lists 1099511627776 files"),
    "2^32 files": (3, _uleb(1 << 32), "lists 4294967296 files"),
    "255 directory formats": (0, b"\xff", ""),
}


@pytest.mark.parametrize("case", LINE_HEADER_CASES)
def test_line_table_header_counts(case: str, inputs: dict[str, Path], build5: Build, tmp_path: Path) -> None:
    """DWARF 5 line-table headers whose counts the header's bytes cannot hold: one error for
    the image, at once, from each verb that reads DWARF. It hung: 2^40 directories of no
    fields (or of fields past the header's end) were read one by one."""
    field, new, error = LINE_HEADER_CASES[case]
    for verb, target in _DWARF_READERS:
        original = inputs["ko" if target == "ext.ko" else target].read_bytes()
        data = line_header_mutation(original, field, new)
        assert data != original and _line_header_fields(original)
        o = _run_verb(verb, target, data, inputs, build5.objtree, tmp_path / verb)
        assert o.rc == 1 and error in o.stderr, (verb, o.stderr)


def test_abbreviation_of_thousands_of_attributes(inputs: dict[str, Path], build5: Build, tmp_path: Path) -> None:
    """An abbreviation table without its terminators reads as one declaration of every
    attribute the section holds: refused, at once, by each verb that reads DWARF."""
    for verb, target in _DWARF_READERS:
        data = abbrev_mutation(inputs["ko" if target == "ext.ko" else target].read_bytes())
        o = _run_verb(verb, target, data, inputs, build5.objtree, tmp_path / verb)
        assert o.rc == 1 and "bad DWARF" in o.stderr, (verb, o.stderr)


@pytest.mark.parametrize("section", [".debug_line_str", ".debug_str"])
def test_strings_without_end(section: str, inputs: dict[str, Path], build5: Build, tmp_path: Path) -> None:
    """A string section without a NUL: every path or name runs to the section's end. One
    error for the image from each verb that reads DWARF (a string that long was read 128
    bytes at a time into one growing bytes object: quadratic, minutes for megabytes)."""
    for verb, target in _DWARF_READERS:
        original = inputs["ko" if target == "ext.ko" else target].read_bytes()
        off, size = _sections(original)[section]
        data = original[:off] + original[off:off + size].replace(b"\0", b"a") + original[off + size:]
        o = _run_verb(verb, target, data, inputs, build5.objtree, tmp_path / verb)
        assert o.rc == 1 and "string" in o.stderr, (verb, o.stderr)


@pytest.mark.parametrize("how", ["STT_FILE \\xff", "STT_FILE \\x01", "STT_FILE \\xc2", "STT_FILE \\t",
                                 ".debug_line_str \\x01", ".debug_line_str \\xff", ".debug_line_str \\t"])
def test_analyze_writes_rows_its_reader_takes(how: str, inputs: dict[str, Path], tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """analyze on a vmlinux.o whose object names (STT_FILE, the rows' file field) or DWARF paths
    hold a control byte or bytes that are not UTF-8: every row it writes is one AliasTable.read
    takes, for the whole table and one image at a time (it wrote rows of such object names,
    exit 0, and every later step refused the table); each copy left without an alias is a
    warning."""
    section, _, byte = how.partition(" ")
    value = int(byte[2:], 16) if byte.startswith("\\x") else 9
    original = inputs["vmlinux.o"].read_bytes()
    data = file_symbol_mutation(original, value) if section == "STT_FILE" else \
        string_mutation(original, section, value)
    vmlinux = tmp_path / "vmlinux.o"
    vmlinux.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    o = check(["analyze", "--vmlinux", vmlinux, "--module", inputs["ko"], "--data", "-o", out],
              [vmlinux, inputs["ko"]], [out / "modules.symalias", out / "modules.symbfreq"], out)
    assert o.rc == 0, o.stderr
    _tables_read_back(out)
    table = AliasTable.read(out / "modules.symalias")
    assert table.for_image("minix")  # the module's copies keep their aliases
    # vmlinux's copies: no alias, and a warning says so (in this process, warnings are log records)
    assert [r for r in caplog.records if r.levelname == "WARNING" and r.getMessage().startswith("vmlinux: ")]
    assert all(r.file.isprintable() and r.decl.isprintable() and r.cu.isprintable() for r in table.rows)


# ---------------------------------------------------------------------------
# Text inputs: a field of each set to what the readers must refuse (or read right)


def _reindexed(table: bytes) -> bytes:
    """The alias table with index lines that fit its rows as they now are, so that a mutated
    row reaches the row checks of a module step (which reads its rows through the index)."""
    lines = table.split(b"\n")
    head = [l + b"\n" for l in lines if l.startswith(b"#") and not l.startswith(b"# image: ")]
    names = [l.split(b" ")[2] for l in lines if l.startswith(b"# image: ")]
    blocks = {n: b"".join(l + b"\n" for l in lines if l and not l.startswith(b"#") and l.split(b"\t")[0] == n)
              for n in names}
    offset = len(b"".join(head)) + sum(len(b"# image: %s %010d %d\n" % (n, 0, len(blocks[n]))) for n in names)
    index = []
    for n in names:
        index.append(b"# image: %s %010d %d\n" % (n, offset, len(blocks[n])))
        offset += len(blocks[n])
    return b"".join(head + index + [blocks[n] for n in names])


def _row_field(image: bytes, field: int, value: bytes) -> Callable[[bytes], bytes]:
    """The table with field ``field`` of ``image``'s first row set to ``value``, reindexed."""
    def edit(table: bytes) -> bytes:
        start = table.index(b"\n" + image + b"\t") + 1
        end = table.index(b"\n", start)
        fields = table[start:end].split(b"\t")
        fields[field] = value
        return _reindexed(table[:start] + b"\t".join(fields) + table[end:])
    return edit


def _index_field(image: bytes, field: int, value: bytes) -> Callable[[bytes], bytes]:
    """The table with field ``field`` (3: offset, 4: length) of ``image``'s index line set."""
    def edit(table: bytes) -> bytes:
        start = table.index(b"\n# image: " + image + b" ") + 1
        end = table.index(b"\n", start)
        fields = table[start:end].split(b" ")
        fields[field] = value
        return table[:start] + b" ".join(fields) + table[end:]
    return edit


# Numbers that int() refuses ('²', 5,000 digits) or misreads ('٣' and '１' read as 3 and 1, ' 1',
# '1_0'), and a length no file has
BAD_NUMBERS = ["²".encode(), "٣".encode(), "１".encode(), b"9" * 5000, b" 1", b"1_0", b"-1"]
TABLE_CASES: dict[str, Callable[[bytes], bytes]] = {
    **{f"occurrence {v[:8]!r}": _row_field(b"minix", 2, v) for v in BAD_NUMBERS},
    **{f"ordinal {v[:8]!r}": _row_field(b"minix", 4, v) for v in BAD_NUMBERS},
    **{f"index offset {v[:8]!r}": _index_field(b"minix", 3, v) for v in BAD_NUMBERS + [b"1" + b"0" * 15]},
    **{f"index length {v[:8]!r}": _index_field(b"minix", 4, v) for v in BAD_NUMBERS + [b"1" + b"0" * 15]},
    **{f"first index offset {v[:8]!r}": _index_field(b"crc7", 3, v) for v in BAD_NUMBERS + [b"1" + b"0" * 15]},
    "symbol not UTF-8": _row_field(b"minix", 3, b"\xff"),
    "decl with a control byte": _row_field(b"minix", 6, b"fs/minix/\x1b[31m.c:1"),
    "cu with U+2028": _row_field(b"minix", 7, "fs/minix/\u2028.c".encode()),
}


@pytest.mark.parametrize("case", TABLE_CASES)
def test_alias_table_fields(case: str, inputs: dict[str, Path], build5: Build, tmp_path: Path) -> None:
    """A number field of the table that is not ASCII digits (or has more than int() takes,
    or points past the file), or a text field that is not printable UTF-8: one error from the
    module step (it reads minix's rows through the index) and from syms (the whole table).
    '²' was a ValueError traceback (str.isdigit() takes it, int() does not), an index length
    of 10^15 a MemoryError (the read was not bounded by the file's size)."""
    original = inputs["table"].read_bytes()
    data = TABLE_CASES[case](original)
    assert data != original
    for verb in ("module-table", "syms-table"):
        o = _run_verb(verb, "table", data, inputs, build5.objtree, tmp_path / verb)
        if verb == "module-table" or not case.startswith(("index", "first index")):  # syms reads no offsets
            assert o.rc == 1, (verb, o.stderr)


SYMBFREQ_CASES = {f"count {v[:8]!r}": v for v in BAD_NUMBERS}


@pytest.mark.parametrize("case", SYMBFREQ_CASES)
def test_symbfreq_counts(case: str, inputs: dict[str, Path], build5: Build, tmp_path: Path) -> None:
    """Every count of modules.symbfreq set to what is not a count: one error from the
    out-of-tree module step (5,000 digits was a ValueError from int(), reported as 'cannot read')."""
    original = inputs["symbfreq"].read_bytes()
    data = b"".join(l.rpartition(b":")[0] + b":" + SYMBFREQ_CASES[case] + b"\n" for l in original.splitlines())
    o = _run_verb("module-out-of-tree", "symbfreq", data, inputs, build5.objtree, tmp_path / "w")
    assert o.rc == 1 and "not a 'name:count' line" in o.stderr, o.stderr


def _index_edit(pattern: bytes, field: int, value: bytes, sep: bytes = b"\t") -> Callable[[bytes], bytes]:
    """The index with field ``field`` of its first line that starts with ``pattern`` set."""
    def edit(index: bytes) -> bytes:
        start = index.index(b"\n" + pattern) + 1
        end = index.index(b"\n", start)
        fields = index[start:end].split(sep)
        fields[field] = value
        return index[:start] + sep.join(fields) + index[end:]
    return edit


INDEX_CASES: dict[str, Callable[[bytes], bytes]] = {
    **{f"sympos {v[:8]!r}": _index_edit(b"vmlinux\t", 3, v) for v in BAD_NUMBERS + [b"0"]},
    **{f"address {v[:8]!r}": _index_edit(b"vmlinux\t", 4, v) for v in
       BAD_NUMBERS + [b"0x" + b"f" * 14, "ffffffff8100000٣".encode(), b"f" * 5000]},
    **{f"text {v[:8]!r}": _index_edit(b"# text:", 2, v, b" ") for v in
       [b"0x" + b"f" * 14, "ffffffff8100000٣".encode(), b"f" * 5000, b"f_" * 8]},
    "build ID with '²'": _index_edit(b"# image: vmlinux", 3, "²".encode(), b" "),
    "image with a space": _index_edit(b"# image: vmlinux", 2, b"vm linux", b" "),
    "alias not UTF-8": _index_edit(b"vmlinux\t", 1, b"name_show@x_c_1\xff"),
    "alias with an escape sequence": _index_edit(b"vmlinux\t", 1, b"name_show@x_c_1\x1b[31m"),
    "decl with U+2028": _index_edit(b"vmlinux\t", 5, "x\u2028.c:1".encode()),
}


@pytest.mark.parametrize("case", INDEX_CASES)
def test_index_fields(case: str, inputs: dict[str, Path], build5: Build, tmp_path: Path) -> None:
    """An index field that is not what 'kasalias index' writes: one error from kallsyms and
    lookup. int() took '٣' as 3, '0x..' and '1_0'; a sympos of 0 named the module's last copy;
    an alias that is not UTF-8 or holds an escape sequence went into the kallsyms text."""
    original = inputs["index"].read_bytes()
    data = INDEX_CASES[case](original)
    assert data != original
    for verb in ("kallsyms-index", "lookup-index"):
        o = _run_verb(verb, "index", data, inputs, build5.objtree, tmp_path / verb)
        assert o.rc == 1 and "malformed index line" in o.stderr, (verb, o.stderr)


def test_kallsyms_addresses(inputs: dict[str, Path], build5: Build, tmp_path: Path) -> None:
    """A /proc/kallsyms address that is not ASCII hex ('٣' read as 3 by int(x, 16)): one error."""
    original = inputs["kallsyms"].read_bytes()
    for n, bad in enumerate(["ffffffff8100000٣", "0xffffffff810000", "ffff_ffff81000000", "f" * 17]):
        data = bad.encode() + original[original.index(b" "):]
        work = tmp_path / f"c{n}"
        work.mkdir()
        kallsyms = work / "kallsyms"
        kallsyms.write_bytes(data)
        o = check(["probe", "--for", "perf", "--kallsyms", kallsyms, "*@fuzz_c_1*"], [kallsyms], [], work)
        assert o.rc == 1 and "kallsyms:1: not an 'ADDRESS TYPE NAME [MODULE]' line" in o.stderr, o.stderr


def _order_cases(objtree: Path) -> dict[str, tuple[str, str]]:
    """modules.order lines: (the line, what analyze says: "" when it reads the modules)."""
    long = "a/" * 2100 + "x.o"
    return {
        "root": ("/", "'/' is not a module object"),
        "dot-dot": ("..", "'..' is not a module object"),
        "dot": (".", "'.' is not a module object"),
        "a directory": ("fs/minix", "'fs/minix' is not a module object"),
        "a directory with a slash": ("fs/minix/", "'fs/minix/' is not a module object"),
        "no stem": ("/.o", "'/.o' is not a module object"),
        "only a suffix": (".ko", "'.ko' is not a module object"),
        "a NUL": ("fs/minix/mi\0nix.o", "a control byte in 'fs/minix/mi\\x00nix.o'"),
        "a form feed": ("fs/minix/minix.o\x0clib/crc7.o", "a control byte"),
        "U+2028": ("fs/minix/minix.o\u2028lib/crc7.o", "a control byte"),
        "a C1 control": ("fs/minix/mi\x85nix.o", "a control byte"),
        "very long": (long, f"a path of {len(long)} bytes"),
        "missing": ("fs/minix/minix².o", "fs/minix/minix².o: no such module file"),
        "empty": ("", ""),
        "trailing space and CR": ("fs/minix/minix.o \r", ""),
        "the X.ko of 6.1": ("fs/minix/minix.ko", ""),
        "absolute": (f"{objtree}/fs/minix/minix.o", ""),
        "through ..": (f"../{objtree.name}/fs/minix/minix.o", ""),
    }


def test_modules_order_lines(case: dict[str, Path], tmp_path: Path) -> None:
    """Each odd modules.order line: one clear error naming the line, or the modules read.
    A line '/' was a ValueError traceback (Path('/').with_suffix()). gen (buildgen's reader of
    the same file) keeps the promise too."""
    w = case["objtree"]
    for name, (line, error) in _order_cases(w).items():
        order = tmp_path / "modules.order"
        order.write_bytes(line.encode("utf-8") + b"\n")
        out = tmp_path / "out"
        out.mkdir()
        o = check(["analyze", "--vmlinux", case["vmlinux.o"], "--modules-order", order, "--objtree", w, "-o", out],
                  [order, case["vmlinux.o"]], [out / "modules.symbfreq", out / "modules.symalias"], out)
        if error:
            assert o.rc == 1 and error in o.stderr, (name, o.stderr)
            assert "no such" in error or f"{order}:1: " in o.stderr, (name, o.stderr)  # the line is named
        else:
            assert o.rc == 0, (name, o.stderr)
            _tables_read_back(out)
            assert name == "empty" or "minix" in AliasTable.read(out / "modules.symalias").images, name
        shutil.rmtree(out)
        gen = tmp_path / "gen"
        gen.mkdir()
        (gen / "modules.order").write_bytes(order.read_bytes())
        check(["gen", "--objtree", gen, "--srctree", w, "--modules-order", "modules.order", "--ninja-file", "k.ninja"],
              [gen / "modules.order"], [gen / "k.ninja"], gen)
        shutil.rmtree(gen)


CACHE_CASES = {
    "10^5 deep": b"[" * 100_000 + b"]" * 100_000,
    "10^5 deep units": b'{"units": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "not JSON": b"\xff\xfe{",
    "a number of 5000 digits": b"9" * 5000,
    "a list": b"[]",
}


@pytest.mark.parametrize("shape", ["10^5 deep", "10^5 deep units", "not JSON", "a number of 5000 digits", "a list",
                                   "a unit that is a number", "a declaration of one item",
                                   "a line that is a string"])
def test_cache_of_another_shape(shape: str, case: dict[str, Path], build5: Build, tmp_path: Path,
                                caplog: pytest.LogCaptureFixture) -> None:
    """An analysis cache (--cache) that is not what analyze writes is dropped with one
    warning and every unit scanned again: the same outputs as without it (a 10^5-deep JSON
    was a RecursionError traceback; a cache entry of another shape a TypeError or IndexError
    in lookup). A cache only saves time: refusing the build for it would be wrong."""
    # build5's objtree: a cached result is keyed by its object file there (read, never written)
    argv: list[object] = ["analyze", "--vmlinux", case["vmlinux.o"], "--modules-order", case["order"],
                          "--objtree", build5.objtree, "--srctree", build5.srctree]
    plain, cached = tmp_path / "plain", tmp_path / "cached"
    plain.mkdir()
    cached.mkdir()
    outs = ["modules.symbfreq", "modules.symalias"]
    assert check([*argv, "-o", plain], [case["vmlinux.o"]], [plain / n for n in outs], plain).rc == 0
    cache = cached / "cache.json"
    if shape in CACHE_CASES:
        cache.write_bytes(CACHE_CASES[shape])
    else:  # a cache analyze wrote, one entry changed
        assert check([*argv, "--cache", cache, "-o", cached], [case["vmlinux.o"]], [cache, *(cached / n for n in outs)],
                     cached).rc == 0
        data = json.loads(cache.read_bytes())
        unit = next(iter(data["units"]))
        name = next(iter(data["units"][unit]))
        if shape == "a unit that is a number":
            data["units"][unit] = 5
        elif shape == "a declaration of one item":
            data["units"][unit][name] = ["x"]
        else:
            data["units"][unit][name] = ["fs/x.c", "12"]
        cache.write_text(json.dumps(data))
        for n in outs:
            (cached / n).unlink()
    caplog.clear()
    o = check([*argv, "--cache", cache, "-o", cached], [case["vmlinux.o"]], [cache, *(cached / n for n in outs)], cached)
    assert o.rc == 0, o.stderr
    # one warning (in this process, warnings are log records)
    said = [r.getMessage() for r in caplog.records if "every unit is scanned again" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"{cache}: not an analysis cache"), said
    for n in outs:
        assert (cached / n).read_bytes() == (plain / n).read_bytes(), n
    json.loads(cache.read_bytes())  # written anew, in the shape analyze reads


# ---------------------------------------------------------------------------
# Hostile structures, by hand


def _verb_cases(f: dict[str, Path], w: Path) -> list[tuple[list[object], list[Path]]]:
    """(argv, outputs) of every verb on the files ``f``, writing into ``w``."""
    return [
        (["module", "--aliases", f["table"], f["ko"], w / "out.ko"], [w / "out.ko"]),
        (["module", "--aliases", f["table"], "--symbfreq", f["symbfreq"], f["ext.ko"], w / "out.ko"], [w / "out.ko"]),
        (["syms", "--aliases", f["table"], "--image", f["vmlinux"], f["syms"], w / "out.syms"], [w / "out.syms"]),
        (["report", "--vmlinux", f["vmlinux"], "--module", f["ko"], "-o", w / "r.txt"], [w / "r.txt"]),
        (["analyze", "--vmlinux", f["vmlinux.o"], "--modules-order", f["order"], "--objtree", f["objtree"],
          "-o", w], [w / "modules.symbfreq", w / "modules.symalias"]),
        (["gen", "--objtree", f["objtree"], "--srctree", w, "--modules-order", f["order"].name,
          "--ninja-file", "k.ninja"], [f["objtree"] / "k.ninja"]),
        (["probe", "--for", "ftrace", "--kallsyms", f["kallsyms"], "--tracefs", w, "*@fuzz_c_1*"], []),
        (["kallsyms", "--index", f["index"], "--kallsyms", f["kallsyms"], "-o", w / "k.txt"], [w / "k.txt"]),
    ]


@pytest.fixture
def case(inputs: dict[str, Path], build5: Build, tmp_path: Path) -> dict[str, Path]:
    """The inputs copied into one work directory (and a small objtree for analyze and gen)."""
    w = tmp_path / "w"
    w.mkdir()
    f = {k: Path(shutil.copy2(p, w / p.name)) for k, p in inputs.items()}
    f["ext.ko"] = Path(shutil.copy2(inputs["ko"], w / "ext_minix.ko"))
    f["objtree"] = w
    f["order"].write_text("".join(f"{m.relative_to(build5.objtree)}\n" for m in build5.modules))
    for m in build5.modules:  # the module objects where modules.order names them
        (w / m.relative_to(build5.objtree)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(m, w / m.relative_to(build5.objtree))
    return f


def _all_inputs(f: dict[str, Path]) -> list[Path]:
    return [p for k, p in f.items() if k != "objtree"]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_fifo_or_directory_as_input(case: dict[str, Path], kind: str) -> None:
    """Each input of each verb replaced by a FIFO (which would block a reader) or a directory."""
    w = case["objtree"]
    for role in ("ko", "ext.ko", "table", "symbfreq", "syms", "vmlinux", "vmlinux.o", "order", "index", "kallsyms"):
        f = dict(case)
        odd = w / f"odd-{role}"
        os.mkfifo(odd) if kind == "fifo" else odd.mkdir()
        f[role] = odd
        for argv, outs in _verb_cases(f, w):
            if str(odd) in map(str, argv) or (role == "order" and argv[0] in ("analyze", "gen")):
                if argv[0] == "gen":
                    argv = [a if a != case["order"].name else odd.name for a in argv]
                o = check(argv, _all_inputs(f) + [odd], outs, w)
                assert o.rc != 0, argv
        odd.rmdir() if kind == "directory" else odd.unlink()


def test_output_that_is_an_input(case: dict[str, Path]) -> None:
    """An output that is an input, under its own name, a symbolic link or a hard link: refused,
    the input unchanged."""
    w = case["objtree"]
    f = case
    for argv, outs in _verb_cases(f, w):
        if argv[0] in ("analyze", "gen", "probe"):  # probe writes to stdout only
            continue
        out = outs[0]
        for inp in [a for a in argv if isinstance(a, Path) and a.is_file()]:
            for how in ("same", "symlink", "hardlink"):
                target = inp if how == "same" else w / f"link-{how}"
                if how == "symlink":
                    target.symlink_to(inp)
                elif how == "hardlink":
                    os.link(inp, target)
                argv2 = [target if a == out else a for a in argv]
                o = check(argv2, _all_inputs(f), [], w)
                assert o.rc == 1 and "an output must be another file" in o.stderr, (argv2, o.stderr)
                if how != "same":
                    target.unlink()
    # analyze's cache and outputs, gen's fragments
    for argv in (["analyze", "--vmlinux", f["vmlinux.o"], "--modules-order", f["order"], "--objtree", w,
                  "--cache", f["vmlinux.o"], "-o", w / "a"],
                 ["gen", "--objtree", w, "--srctree", w, "--modules-order", f["order"].name,
                  "--ninja-file", f["order"].name]):
        o = check(argv, _all_inputs(f), [], w)
        assert o.rc == 1 and "an output must be another file" in o.stderr, (argv, o.stderr)


def test_device_or_missing_directory_as_output(case: dict[str, Path]) -> None:
    w = case["objtree"]
    for argv, outs in _verb_cases(case, w)[:4]:
        dev = [Path("/dev/null") if a == outs[0] else a for a in argv]
        o = check(dev, _all_inputs(case), [], w)
        assert o.rc == 1 and "not a regular file" in o.stderr, (dev, o.stderr)
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
        nowhere = [w / "no-such-dir" / "out" if a == outs[0] else a for a in argv]
        o = check(nowhere, _all_inputs(case), [], w)
        assert o.rc == 1, (nowhere, o.stderr)
        under_file = [case["syms"] / "out" if a == outs[0] else a for a in argv]  # its "directory" is a file
        o = check(under_file, _all_inputs(case), [], w)
        assert o.rc == 1, (under_file, o.stderr)


def test_long_output_name(case: dict[str, Path]) -> None:
    """A valid 250-byte output name is written (the temporary name beside it stays valid)."""
    w = case["objtree"]
    out = w / ("m" * 240 + ".ko.aliased")
    o = check(["module", "--aliases", case["table"], case["ko"], out], _all_inputs(case), [out], w)
    assert o.rc == 0, o.stderr


def test_gen_refuses_a_path_ninja_cannot_hold(case: dict[str, Path]) -> None:
    w = case["objtree"]
    (w / "odd|dir").mkdir()
    shutil.copy2(case["ko"].with_suffix(".ko"), w / "odd|dir" / "x.ko")
    order = w / "odd.order"
    order.write_text("odd|dir/x.o\n")
    o = check(["gen", "--objtree", w, "--srctree", w, "--modules-order", order.name, "--ninja-file", "k.ninja"],
              _all_inputs(case) + [order], [w / "k.ninja"], w)
    assert o.rc == 1 and "'|' cannot be written" in o.stderr, o.stderr


# The module step, held where its output is written and not yet renamed: os.replace says so on
# stdout and waits for a signal, whose handler leaves it by raising. The rest is the real step
# (as the generated build starts it).
HELD_STEP = """
import os, signal, sys
def held(src, dst):
    sys.stdout.write("held " + src + "\\n")
    sys.stdout.flush()
    while True:
        signal.pause()
os.replace = held
from kasalias.cli import main
sys.exit(main())
"""


def _default_signals() -> None:
    """In the child before exec: SIGINT and SIGTERM at their defaults and unblocked, whatever
    the test inherited (a background job starts with SIGINT ignored, and Python leaves an
    ignored SIGINT ignored: the step's own handling would never run)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_leave_nothing_behind(case: dict[str, Path], sig: signal.Signals) -> None:
    """A module step stopped by SIGINT or SIGTERM (make and ninja stopping a build) while its
    temporary output exists: the step's handler runs (KeyboardInterrupt, or the exception its
    SIGTERM handler raises) and it exits 130 or 143 without a word; the temporary file is
    gone, no output, the input unchanged. The step waits for the signal at that point, and
    the test signals only once the step says it is there: nothing depends on timing."""
    from conftest import ROOT

    w = case["objtree"]
    out = w / "out.ko"
    before = digest(_all_inputs(case))
    proc = subprocess.Popen([sys.executable, "-c", HELD_STEP, "module", "--aliases", str(case["table"]),
                             str(case["ko"]), str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    try:
        # Bounded: a step that never gets to its rename fails here, it does not hang the run.
        ready, _w, _x = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""  # type: ignore[union-attr]
        assert line.startswith("held "), (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        tmp = Path(line[len("held "):].rstrip("\n"))
        assert tmp.parent == w and tmp.is_file() and tmp.stat().st_size > 0  # written, not renamed
        assert [p for p in os.listdir(w) if p.endswith(".tmp")] == [tmp.name]
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, (proc.returncode, err)  # its own handler, not the signal's default
    assert err == "", err  # no traceback, no message: make reports the interrupted step
    assert not tmp.exists() and not os.path.lexists(out)
    assert not [p for p in os.listdir(w) if p.endswith(".tmp")]
    assert digest(_all_inputs(case)) == before
