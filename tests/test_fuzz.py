"""Hostile input: every verb on real sample-tree inputs mutated by a seeded fuzzer, plus the
hostile structures by hand (FIFOs, directories, outputs that are inputs, read-only places).

The promise is the assertion: one 'kasalias: error: ...' line and a non-zero exit, or a
written output; never a traceback, a hang, a partial or leftover file, or a changed input.
Cases run in this process (kasalias.cli.main), each under a time limit; KASALIAS_FUZZ_CASES
sets how many per verb (CI: the default), KASALIAS_FUZZ_SEED the seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
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

from conftest import Build
from kasalias.cli import main

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
        fields = lines[i].split(b"\t") if b"\t" in lines[i] else lines[i].split(b" ")
        j = rng.randrange(len(fields))
        fields[j] = rng.choice([b"", b"-1", b"99999999999999999999", b"x" * 600, b"\xff", b"a b", b"0x"])
        lines[i] = (b"\t" if b"\t" in lines[i] else b" ").join(fields)
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
    files = {"ko": build5.ko("minix"), "vmlinux.o": build5.vmlinux_o, "vmlinux": build5.vmlinux,
             "kallsyms": kallsyms,
             "table": analysis5 / "modules.symalias", "symbfreq": analysis5 / "modules.symbfreq", "syms": syms,
             "order": build5.objtree / "modules.order"}
    (d / "orig").mkdir()
    return {k: Path(shutil.copy2(v, d / "orig" / v.name)) for k, v in files.items()}


@dataclass
class Verb:
    """How a verb is run on one case's files; ``target`` names the input the fuzzer mutates."""

    name: str
    target: str
    argv: Callable[[dict[str, Path], Path], list[object]]
    outputs: Callable[[Path], list[Path]]


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
    Verb("report", "vmlinux", lambda f, w: ["report", "--vmlinux", f["vmlinux"], "--module", f["ko"], "--data",
                                            "--json", "-o", w / "report.json"], lambda w: [w / "report.json"]),
    Verb("report-module", "ko", lambda f, w: ["report", "--vmlinux", f["vmlinux"], "--module", f["ko"], "--data",
                                              "-o", w / "report.txt"], lambda w: [w / "report.txt"]),
    Verb("probe", "kallsyms", lambda f, w: ["probe", "--for", "perf", "--kallsyms", f["kallsyms"], "*@fuzz_c_1*"],
         lambda w: []),
    Verb("analyze", "vmlinux.o", lambda f, w: ["analyze", "--vmlinux", f["vmlinux.o"], "--module", f["ko"], "--data",
                                               "-o", w], lambda w: [w / "modules.symbfreq", w / "modules.symalias"]),
]


def case_files(inputs: dict[str, Path], work: Path, target: str, data: bytes) -> dict[str, Path]:
    files = {}
    for k, p in inputs.items():
        files[k] = p
    files["ext.ko"] = inputs["ko"]
    dst = work / ("ext_minix.ko" if target == "ext.ko" else inputs[target].name)
    dst.write_bytes(data)
    files[target] = dst
    if target != "ext.ko":  # the out-of-tree verbs take the module under a name the table does not know
        ext = work / "ext_minix.ko"
        shutil.copy2(inputs["ko"], ext)
        files["ext.ko"] = ext
    return files


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v.name)
def test_fuzzed_inputs(verb: Verb, inputs: dict[str, Path], tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}-{verb.name}")
    original = inputs[verb.target if verb.target != "ext.ko" else "ko"].read_bytes()
    elf = original.startswith(b"\x7fELF")
    ok = 0
    for n in range(-1, CASES):  # case -1: the input as it is, which must work
        work = tmp_path / f"c{n}"
        work.mkdir()
        data = original if n < 0 else mutate_elf(original, rng) if elf else mutate_text(original, rng)
        files = case_files(inputs, work, verb.target, data)
        argv = verb.argv(files, work)
        ins = [p for p in files.values() if p.exists()]
        o = check(argv, ins, verb.outputs(work), work)
        assert n >= 0 or o.rc == 0, (argv, o.stderr)
        ok += o.rc == 0
        shutil.rmtree(work)
    print(f"{verb.name}: {CASES} cases, {ok - 1} written")


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
    for role in ("ko", "ext.ko", "table", "symbfreq", "syms", "vmlinux", "vmlinux.o", "order"):
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_leave_nothing_behind(case: dict[str, Path], sig: signal.Signals) -> None:
    """A module step stopped by SIGINT or SIGTERM (make and ninja stopping a build), at
    whatever point the signal finds it: no traceback, no temporary file, input unchanged;
    exit 130/143 when it was stopped, 0 when it had finished."""
    w = case["objtree"]
    from conftest import ROOT

    before = digest(_all_inputs(case))
    codes = set()
    for n in range(20):
        out = w / f"out{n}.ko"
        proc = subprocess.Popen([sys.executable, "-m", "kasalias", "module", "--aliases", str(case["table"]),
                                 str(case["ko"]), str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
        codes.add(proc.returncode)
        assert "Traceback" not in err, err
        assert proc.returncode in (0, 128 + sig, -sig), (proc.returncode, err)
        assert not [p for p in os.listdir(w) if p.endswith(".tmp")], os.listdir(w)
    assert digest(_all_inputs(case)) == before
    assert codes != {0}  # the signal did arrive while the step ran

