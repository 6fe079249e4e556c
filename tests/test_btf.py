"""kasalias.btf on real BTF: pahole's output for small gcc objects (a base and a split one on
it), bpftool's reading of what kasalias appends, and Debian's 6.12 vmlinux and a module
(realkernel tier: tools/fetch-debian-dbg's cloud kernel, fetched on first use)."""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from kasalias import btf as B
from kasalias.errors import KasaliasError

BASE_C = """\
struct shared { int a; long b; };
static int __attribute__((noinline, noipa)) type_show(struct shared *s, char *buf) { return s->a + buf[0]; }
static long __attribute__((noinline, noipa)) name_show(const struct shared *s) { return s->b; }
int entry(struct shared *s, char *buf) { return type_show(s, buf) + (int)name_show(s); }
"""
# a "module": the same struct (pahole finds it in the base), its own type, its own type_show
MOD_C = """\
struct shared { int a; long b; };
struct modonly { unsigned short x; };
static int __attribute__((noinline, noipa)) type_show(struct shared *s, struct modonly *m) { return s->a + m->x; }
int mod_entry(struct shared *s, struct modonly *m) { return type_show(s, m); }
"""


def btf_section(path: Path) -> bytes:
    with path.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF")
        assert sec is not None, f"{path}: no .BTF"
        return bytes(sec.data())


def _run(*cmd: object) -> None:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """base.o with pahole's BTF, and mod.o with split BTF on it (pahole -J --btf_base)."""
    if not (shutil.which("gcc") and shutil.which("pahole")):
        pytest.skip("gcc or pahole not installed")
    d = tmp_path_factory.mktemp("btf")
    out = {}
    for name, src, extra in (("base", BASE_C, []), ("mod", MOD_C, [f"--btf_base={d / 'base.o'}"])):
        (d / f"{name}.c").write_text(src)
        _run("gcc", "-g", "-O2", "-c", d / f"{name}.c", "-o", d / f"{name}.o")
        _run("pahole", "-J", *extra, d / f"{name}.o")
        out[name] = d / f"{name}.o"
    return out


@pytest.fixture(scope="module")
def base_data(objs: dict[str, Path]) -> bytes:
    return btf_section(objs["base"])


@pytest.fixture(scope="module")
def mod_data(objs: dict[str, Path]) -> bytes:
    return btf_section(objs["mod"])


def by_name(btf: B.Btf, kind: int, name: str) -> B.BtfType:
    found = [t for t in btf.types if t.kind == kind and t.name == name]
    assert len(found) == 1, (kind, name, found)
    return found[0]


# -- reading -------------------------------------------------------------------------------


def test_round_trip(base_data: bytes, mod_data: bytes) -> None:
    base = B.Btf(base_data)
    mod = B.Btf(mod_data, base)
    assert base.to_bytes() == base_data and mod.to_bytes() == mod_data
    assert B.BtfAppender(base).to_bytes() == base_data  # nothing appended: the same bytes
    assert B.BtfAppender(mod).to_bytes() == mod_data
    assert b"".join(t.encode() for t in base.types) == base.type_bytes  # every record decoded and re-packed


def test_read_types(base_data: bytes) -> None:
    btf = B.Btf(base_data)
    assert btf.endian == "<" and btf.hdr_len == 24 and btf.start_id == 1 and btf.last_id == len(btf.types)
    shared = by_name(btf, B.KIND_STRUCT, "shared")
    assert shared.size_or_type == 16 and shared.vlen == 2
    members = [(btf.string_at(n), btf.type_by_id(t).name, off) for n, t, off in shared.records]
    assert members == [("a", "int", 0), ("b", "long int", 64)]
    assert by_name(btf, B.KIND_INT, "int").records == [((1 << 24) | 32,)]  # BTF_INT_SIGNED, 32 bits
    with pytest.raises(KasaliasError):
        btf.type_by_id(0)  # void is no type record
    with pytest.raises(KasaliasError):
        btf.type_by_id(btf.last_id + 1)


def test_func_and_proto(base_data: bytes) -> None:
    btf = B.Btf(base_data)
    [func] = btf.find_funcs("type_show")
    assert func.vlen == B.FUNC_STATIC and func.kflag == 0
    assert btf.find_funcs("entry")[0].vlen == B.FUNC_STATIC  # pahole 1.24 writes static for all
    proto = btf.proto(btf.func_proto_id("type_show"))
    assert btf.type_by_id(proto.ret_type_id).name == "int"
    assert [p.name for p in proto.params] == ["s", "buf"]
    s_ptr = btf.type_by_id(proto.params[0].type_id)
    assert s_ptr.kind == B.KIND_PTR and btf.type_by_id(s_ptr.size_or_type).name == "shared"
    # entry has the same C signature: pahole shares the proto
    assert btf.func_proto_id("entry") == proto.id
    name_show = btf.proto(btf.func_proto_id("name_show"))
    const = btf.type_by_id(btf.type_by_id(name_show.params[0].type_id).size_or_type)
    assert const.kind == B.KIND_CONST
    with pytest.raises(KasaliasError, match="no FUNC"):
        btf.func_proto_id("foo_show")
    with pytest.raises(KasaliasError, match="not a FUNC_PROTO"):
        btf.proto(func.id)


def test_split_ids_and_strings(base_data: bytes, mod_data: bytes) -> None:
    base = B.Btf(base_data)
    mod = B.Btf(mod_data, base, "mod")
    assert mod.start_id == base.last_id + 1 and mod.start_str_off == base.str_len
    assert mod.strings[:1] != b"\0"  # a split string table has no leading empty string
    own = mod.find_funcs("type_show", include_base=False)
    assert len(own) == 1 and own[0].id > base.last_id
    assert len(mod.find_funcs("type_show")) == 2  # the base's copy and the module's
    with pytest.raises(KasaliasError, match="different protos"):
        mod.func_proto_id("type_show")
    proto = mod.proto(mod.func_proto_id("type_show", include_base=False))
    assert [p.name for p in proto.params] == ["s", "m"]
    shared_ptr = mod.type_by_id(proto.params[0].type_id)  # the base's "struct shared *", by the base's id
    assert shared_ptr.id <= base.last_id and mod.type_by_id(shared_ptr.size_or_type).name == "shared"
    modonly_ptr = mod.type_by_id(proto.params[1].type_id)
    assert modonly_ptr.id > base.last_id and mod.type_by_id(modonly_ptr.size_or_type).name == "modonly"
    [s_param] = [t for t in mod.type_by_id(proto.id).records if mod.string_at(t[0]) == "s"]
    assert s_param[0] < base.str_len  # "s" is the base's string
    with pytest.raises(KasaliasError, match="without its base"):
        B.Btf(mod_data)  # its names point into the base


# -- appending -----------------------------------------------------------------------------


def test_append_func(base_data: bytes) -> None:
    btf = B.Btf(base_data)
    proto_id = btf.func_proto_id("type_show")
    new = B.append_funcs(base_data, [("type_show.base_c_2", proto_id)])
    again = B.Btf(new)
    assert again.last_id == btf.last_id + 1
    func = again.type_by_id(btf.last_id + 1)
    assert (func.kind, func.name, func.vlen, func.kflag, func.size_or_type) == (
        B.KIND_FUNC, "type_show.base_c_2", B.FUNC_STATIC, 0, proto_id)
    assert again.types[:-1] == btf.types  # every old id the same
    assert again.strings.startswith(btf.strings) and again.strings.endswith(b"\0type_show.base_c_2\0")
    assert len(new) - len(base_data) == 12 + len("type_show.base_c_2") + 1
    assert again.to_bytes() == new
    assert B.append_funcs(base_data, [("type_show.base_c_2", proto_id)]) == new  # deterministic
    with pytest.raises(KasaliasError, match="already there"):
        B.append_funcs(new, [("type_show.base_c_2", proto_id)])  # not twice on the same bytes
    with pytest.raises(KasaliasError, match="already there"):
        B.append_funcs(base_data, [("x.y", proto_id), ("x.y", proto_id)])


def test_append_proto(base_data: bytes) -> None:
    btf = B.Btf(base_data)
    old = btf.proto(btf.func_proto_id("type_show"))
    int_id = by_name(btf, B.KIND_INT, "int").id
    app = B.BtfAppender(btf)
    pid = app.add_func_proto(int_id, [("s", old.params[0].type_id), ("buf", old.params[1].type_id),
                                      ("flags", int_id)])
    void_pid = app.add_func_proto(0, [("fmt", old.params[1].type_id), ("", 0)])  # void f(char *fmt, ...)
    fid = app.add_func("type_show.base_c_9", pid)
    vid = app.add_func("log.base_c_1", void_pid)
    assert (pid, void_pid, fid, vid) == tuple(range(btf.last_id + 1, btf.last_id + 5))
    new = app.to_bytes()
    again = B.Btf(new)
    got = again.proto(again.type_by_id(fid).size_or_type)
    assert got == B.FuncProto(pid, int_id, (B.Param("s", old.params[0].type_id),
                                            B.Param("buf", old.params[1].type_id), B.Param("flags", int_id)))
    assert again.proto(void_pid).params[-1] == B.Param("", 0) and again.proto(void_pid).ret_type_id == 0
    # "s" and "buf" reused, "flags", "fmt" and the two FUNC names new
    added = b"flags\0fmt\0type_show.base_c_9\0log.base_c_1\0"
    assert again.strings == btf.strings + added
    assert len(new) - len(base_data) == (12 + 3 * 8) + (12 + 2 * 8) + 2 * 12 + len(added)
    assert again.func_proto_id("type_show.base_c_9") == pid


def test_append_refusals(base_data: bytes) -> None:
    btf = B.Btf(base_data)
    app = B.BtfAppender(btf)
    shared = by_name(btf, B.KIND_STRUCT, "shared").id
    proto = btf.func_proto_id("type_show")
    func = btf.find_funcs("type_show")[0].id
    for bad_proto in (shared, func, 0, btf.last_id + 1, -1):
        with pytest.raises(KasaliasError):
            app.add_func("a.b", bad_proto)
    with pytest.raises(KasaliasError, match="linkage"):
        app.add_func("a.b", proto, linkage=B.FUNC_EXTERN)
    with pytest.raises(KasaliasError, match="already there"):
        app.add_func("type_show", proto)
    int_id = by_name(btf, B.KIND_INT, "int").id
    for ret, params in ((proto, []),  # a FUNC_PROTO has no size
                        (0, [("x", 0), ("y", int_id)]),  # void only as the last, unnamed (...)
                        (0, [("x", 0)]),
                        (0, [("x", func)]),
                        (0, [("x", btf.last_id + 1)]),
                        (0, [("", int_id)]),  # a FUNC needs every argument named
                        (0, [("a@b", int_id)])):
        with pytest.raises(KasaliasError):
            app.add_func_proto(ret, params)
    assert app.to_bytes() == base_data  # refusals leave nothing behind


@pytest.mark.parametrize("name", ["a@b", "1abc", "", "a" * 512, "a b", "a-b", "caf\u00e9", "\u00e9t\u00e9",
                                  "x\0y", "type_show@net_core_net_sysfs_c_116"])
def test_bad_names(base_data: bytes, name: str) -> None:
    app = B.BtfAppender(B.Btf(base_data))
    with pytest.raises(KasaliasError) as exc:
        app.add_func(name, B.Btf(base_data).func_proto_id("type_show"))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["_x", ".x", "a" * 511, "type_show.net_core_net_sysfs_c_116", "A.b_9.c",
                                  "get_block.fs_minix_itree_v1_c_5"])
def test_good_names(name: str) -> None:
    B.check_name(name)


def test_alias_spelling() -> None:
    assert B.alias_btf_name("type_show@net_core_net_sysfs_c_116") == "type_show.net_core_net_sysfs_c_116"
    with pytest.raises(KasaliasError):
        B.alias_btf_name("type_show@net/core")


def test_split_append(base_data: bytes, mod_data: bytes) -> None:
    base = B.Btf(base_data)
    mod = B.Btf(mod_data, base)
    own_proto = mod.func_proto_id("type_show", include_base=False)
    base_proto = base.func_proto_id("type_show")
    new = B.append_funcs(mod_data, [("type_show.mod_c_3", own_proto), ("type_show.base_c_2", base_proto)],
                         base=base_data)
    assert B.append_funcs(mod_data, [("type_show.mod_c_3", own_proto), ("type_show.base_c_2", base_proto)],
                          base=base) == new
    again = B.Btf(new, base)
    f1, f2 = again.types[-2:]
    assert (f1.id, f2.id) == (mod.last_id + 1, mod.last_id + 2)
    assert (f1.name, f1.size_or_type, f2.name, f2.size_or_type) == (
        "type_show.mod_c_3", own_proto, "type_show.base_c_2", base_proto)
    assert f1.name_off == base.str_len + mod.str_len  # after the module's own strings
    assert again.to_bytes() == new and base.to_bytes() == base_data  # the base untouched
    # a split proto on base types
    app = B.BtfAppender(mod)
    pid = app.add_func_proto(by_name(base, B.KIND_INT, "int").id, [("s", mod.proto(own_proto).params[0].type_id)])
    assert pid == mod.last_id + 1 and B.Btf(app.to_bytes(), base).proto(pid).params[0].name == "s"


def _swap(data: bytes) -> bytes:
    """The same BTF in the other byte order (as libbpf's btf_bswap_* would write it)."""
    btf = B.Btf(data)
    types = b""
    for t in btf.types:
        one, each = B._RECORDS[t.kind]
        types += struct.pack(">III", t.name_off, t.info, t.size_or_type)
        types += b"".join(struct.pack(">" + (one or each), *r) for r in t.records)
    hdr = struct.pack(">HBBIIIII", B.BTF_MAGIC, 1, 0, 24, 0, len(types), len(types), btf.str_len)
    return hdr + types + btf.strings


def test_big_endian(base_data: bytes) -> None:
    big = _swap(base_data)
    assert big[:2] == b"\xeb\x9f"
    btf = B.Btf(big)
    assert btf.endian == ">" and btf.to_bytes() == big
    little = B.Btf(base_data)
    assert [(t.name, t.kind, t.records) for t in btf.types] == [(t.name, t.kind, t.records) for t in little.types]
    proto = btf.func_proto_id("type_show")
    new = B.append_funcs(big, [("type_show.base_c_2", proto)])
    assert new == _swap(B.append_funcs(base_data, [("type_show.base_c_2", proto)]))


def test_layout_header(base_data: bytes) -> None:
    """7.2's 32-byte header with a layout section between types and strings (libbpf's
    add_layout): read, kept and rebuilt around appended types."""
    btf = B.Btf(base_data)
    sizes = [(0, 0)] + [(struct.calcsize(B._RECORDS[k][0]), struct.calcsize(B._RECORDS[k][1]))
                        for k in range(1, 20)]
    layout = b"".join(struct.pack("<BBH", one, each, 0) for one, each in sizes)
    types = btf.type_bytes
    hdr = struct.pack("<HBBIIIIIII", B.BTF_MAGIC, 1, 0, 32, 0, len(types), len(types) + len(layout), btf.str_len,
                      len(types), len(layout))
    data = hdr + types + layout + btf.strings
    lay = B.Btf(data)
    assert lay.layout == layout and lay.to_bytes() == data and lay.types == btf.types
    new = B.Btf(B.append_funcs(data, [("x.y", lay.func_proto_id("entry"))]))
    assert new.layout == layout and new.layout_off == len(types) + 12 and new.types[-1].name == "x.y"


def test_malformed(base_data: bytes, mod_data: bytes) -> None:
    """Every truncation, and bytes changed at random: a KasaliasError or a parse, nothing else."""
    base = B.Btf(base_data)
    for n in range(len(base_data)):
        with pytest.raises(KasaliasError):
            B.Btf(base_data[:n])
    for n in range(len(mod_data)):
        try:
            B.Btf(mod_data[:n], base)
        except KasaliasError:
            pass
    rng = random.Random(22)
    for _ in range(2000):
        data = bytearray(base_data)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            btf = B.Btf(bytes(data))
            for t in btf.types:  # lookups on what parsed fail cleanly too
                if t.kind == B.KIND_FUNC:
                    btf.proto(t.size_or_type)
        except KasaliasError:
            pass
    for junk in (b"", b"\x9f\xeb", b"\x9f\xeb\x01\x00" + b"\xff" * 20, b"\x00" * 64, os.urandom(64),
                 base_data[:24] + b"\x00" * 8):
        with pytest.raises(KasaliasError):
            B.Btf(junk)


# -- bpftool -------------------------------------------------------------------------------


def _bpftool(*args: object) -> str:
    proc = subprocess.run(["bpftool", *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool not on PATH (Debian: apt install bpftool)")
def test_bpftool_reads_appended(objs: dict[str, Path], base_data: bytes, mod_data: bytes, tmp_path: Path) -> None:
    base = B.Btf(base_data)
    app = B.BtfAppender(base)
    pid = app.add_func_proto(by_name(base, B.KIND_INT, "int").id, [("flags", by_name(base, B.KIND_INT, "int").id)])
    app.add_func("type_show.base_c_2", base.func_proto_id("type_show"))
    app.add_func("type_show.base_c_9", pid)
    (tmp_path / "base.btf").write_bytes(app.to_bytes())
    _run("objcopy", f"--update-section=.BTF={tmp_path / 'base.btf'}", objs["base"], tmp_path / "base.o")
    raw = _bpftool("btf", "dump", "file", tmp_path / "base.o", "format", "raw")
    n = base.last_id
    assert f"[{n + 2}] FUNC 'type_show.base_c_2' type_id={base.func_proto_id('type_show')} linkage=static" in raw
    assert f"[{n + 3}] FUNC 'type_show.base_c_9' type_id={pid} linkage=static" in raw
    assert f"[{pid}] FUNC_PROTO '(anon)' ret_type_id=" in raw and "\t'flags' type_id=" in raw
    # a module's: split on the unchanged base
    mod = B.Btf(mod_data, base)
    new = B.append_funcs(mod_data, [("type_show.mod_c_3", mod.func_proto_id("type_show", include_base=False))],
                         base=base)
    (tmp_path / "mod.btf").write_bytes(new)
    _run("objcopy", f"--update-section=.BTF={tmp_path / 'mod.btf'}", objs["mod"], tmp_path / "mod.o")
    raw = _bpftool("btf", "dump", "file", tmp_path / "mod.o", "--base-btf", objs["base"], "format", "raw")
    assert f"[{mod.last_id + 1}] FUNC 'type_show.mod_c_3' type_id=" in raw
    _bpftool("btf", "dump", "file", tmp_path / "mod.o", "--base-btf", objs["base"], "format", "c")


# -- Debian's 6.12 debug kernel (pahole 1.24): tools/fetch-debian-dbg's, fetched on first use ------


@pytest.fixture(scope="module")
def dbg() -> dict[str, Path]:
    out = subprocess.run([str(Path(__file__).resolve().parent.parent / "tools" / "fetch-debian-dbg")], check=True,
                         capture_output=True, text=True).stdout
    vals = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {"vmlinux": Path(vals["vmlinux"]), "btrfs": next(Path(vals["modules"]).rglob("btrfs.ko"))}


@pytest.fixture(scope="module")
def vmlinux_btf(dbg: dict[str, Path]) -> bytes:
    return btf_section(dbg["vmlinux"])


@pytest.mark.realkernel
def test_real_vmlinux(vmlinux_btf: bytes) -> None:
    v = B.Btf(vmlinux_btf, what="vmlinux")
    assert v.to_bytes() == vmlinux_btf and len(v.types) > 100_000
    # pahole 1.24 keeps one FUNC per name, with one copy's proto: net-sysfs' type_show is not it
    [ts] = v.find_funcs("type_show")
    assert [p.name for p in v.proto(ts.size_or_type).params] == ["kobj", "attr", "buf"]
    names = [f"type_show.net_core_net_sysfs_c_{i:03d}" for i in range(990)]
    new = B.append_funcs(vmlinux_btf, [(n, ts.size_or_type) for n in names])
    assert len(new) - len(vmlinux_btf) == 990 * (12 + 35)
    again = B.Btf(new)
    assert [t.name for t in again.types[len(v.types):]] == names


@pytest.mark.realkernel
def test_real_module(vmlinux_btf: bytes, dbg: dict[str, Path]) -> None:
    """btrfs.ko's split BTF on vmlinux's: a FUNC on an existing proto and one on a new proto
    of the same parameters, appended and parsed back."""
    v = B.Btf(vmlinux_btf, what="vmlinux")
    data = btf_section(dbg["btrfs"])
    m = B.Btf(data, v, "btrfs.ko")
    assert m.to_bytes() == data and m.start_id == v.last_id + 1
    fn = next(t for t in m.types if t.kind == B.KIND_FUNC and len(m.proto(t.size_or_type).params) == 3)
    proto = m.proto(fn.size_or_type)
    app = B.BtfAppender(m)
    pid = app.add_func_proto(proto.ret_type_id, [(p.name, p.type_id) for p in proto.params])
    app.add_func(f"{fn.name}.fs_btrfs_a_c_5", fn.size_or_type)
    app.add_func(f"{fn.name}.fs_btrfs_b_c_5", pid)
    new = app.to_bytes()
    # parameter names reused; two new FUNC names
    assert len(new) - len(data) == (12 + 3 * 8) + 2 * (12 + len(fn.name) + len(".fs_btrfs_a_c_5") + 1)
    again = B.Btf(new, v)
    assert again.proto(again.func_proto_id(f"{fn.name}.fs_btrfs_b_c_5")).params == proto.params
