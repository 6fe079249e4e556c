"""'kasalias probe' on a saved /proc/kallsyms and tracefs files in the kernel's formats (the
booted kernel: tests/test_tracers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_kasalias
from kasalias.probe import MAX_EVENT_NAME, event_name

KALLSYMS = """\
ffffffff81000000 T _text
ffffffff81100010 t type_show
ffffffff81100010 t type_show@kernel_events_core_c_11671
ffffffff81200020 t type_show
ffffffff81200020 t type_show@net_core_net_sysfs_c_116
ffffffff81300000 T vfs_read
ffffffffa0010000 t get_block\t[minix]
ffffffffa0010000 t get_block@fs_minix_itree_common_c_152@fs_minix_itree_v1_c\t[minix]
ffffffffa0020000 t get_block\t[minix]
ffffffffa0020000 t get_block@fs_minix_itree_common_c_152@fs_minix_itree_v2_c\t[minix]
"""
# available_filter_functions_addrs: what set_ftrace_filter's numbers count (one line per
# traceable function, its original's name)
ADDRS = """\
ffffffff81100010 type_show
ffffffff81200020 type_show
ffffffff81300000 vfs_read
ffffffffa0010000 get_block [minix]
ffffffffa0020000 get_block [minix]
"""
V1 = "get_block@fs_minix_itree_common_c_152@fs_minix_itree_v1_c"


def alias_first(text: str) -> str:
    """The kallsyms of a KAS_ALIAS=first kernel: each alias line before its original's."""
    lines = text.splitlines(keepends=True)
    for i in range(len(lines) - 1):
        if "@" in lines[i + 1] and "@" not in lines[i]:
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return "".join(lines)


@pytest.fixture
def kallsyms(tmp_path: Path) -> Path:
    path = tmp_path / "kallsyms"
    path.write_text(KALLSYMS)
    return path


def probe(kallsyms: Path, *args: str, check: bool = True) -> list[str]:
    proc = run_kasalias("probe", "--kallsyms", kallsyms, *args, check=check)
    return proc.stdout.splitlines() if check else [proc.stderr.strip(), str(proc.returncode)]


def test_each_tool_gets_its_form(kallsyms: Path, tmp_path: Path) -> None:
    assert probe(kallsyms, "--for", "kprobe", "type_show@net_core_net_sysfs_c_116", V1) == [
        "p:kasalias/type_show_net_core_net_sysfs_c_116 type_show@net_core_net_sysfs_c_116",
        f"p:kasalias/get_block_fs_minix_itree_common_c_152_fs_minix_itree_v1_c minix:{V1}"]
    assert probe(kallsyms, "--for", "bpftrace", V1) == ["kprobe:0xffffffffa0010000"]  # ftrace lists no alias
    assert probe(kallsyms, "--for", "perf", V1) == [
        "-m minix -a get_block_fs_minix_itree_common_c_152_fs_minix_itree_v1_c="
        "get_block\\@fs_minix_itree_common_c_152\\@fs_minix_itree_v1_c"]
    (tmp_path / "available_filter_functions_addrs").write_text(ADDRS)
    assert probe(kallsyms, "--for", "ftrace", "--tracefs", str(tmp_path), "type_show@net_core_net_sysfs_c_116",
                 V1) == ["2", "4"]


def test_return_probes(kallsyms: Path) -> None:
    assert probe(kallsyms, "--for", "kprobe", "--return", V1) == [
        f"r:kasalias/get_block_fs_minix_itree_common_c_152_fs_minix_itree_v1_c_ret minix:{V1}"]
    assert probe(kallsyms, "--for", "bpftrace", "--return", V1) == ["kretprobe:0xffffffffa0010000"]
    assert probe(kallsyms, "--for", "perf", "--return", "type_show@net_core_net_sysfs_c_116") == [
        "-a type_show_net_core_net_sysfs_c_116_ret=type_show\\@net_core_net_sysfs_c_116%return"]
    err, rc = probe(kallsyms, "--for", "ftrace", "--return", V1, check=False)
    assert rc == "1" and err.startswith("kasalias: error: ftrace has no return probe")


def test_patterns_expand_in_kallsyms_order_once(kallsyms: Path) -> None:
    assert probe(kallsyms, "--for", "kprobe", "type_show@*", "type_show@net*") == [
        "p:kasalias/type_show_kernel_events_core_c_11671 type_show@kernel_events_core_c_11671",
        "p:kasalias/type_show_net_core_net_sysfs_c_116 type_show@net_core_net_sysfs_c_116"]


def test_original_first_kernel_says_why_bpftrace_gets_an_address(kallsyms: Path) -> None:
    proc = run_kasalias("probe", "--kallsyms", kallsyms, "--for", "bpftrace", "type_show@*")
    assert proc.stdout.splitlines() == ["kprobe:0xffffffff81100010", "kprobe:0xffffffff81200020"]
    assert proc.stderr.count("\n") == 1 and "ftrace names these copies by the original name" in proc.stderr
    err, rc = probe(kallsyms, "--for", "fprobe", V1, check=False)
    assert rc == "1" and "fprobe takes the name ftrace gives an address" in err


def test_alias_first_kernel_gets_the_alias_everywhere(tmp_path: Path) -> None:
    """Where the alias is the first name at its address, ftrace lists it: bpftrace, ftrace's
    filters and fprobe take it as written, nothing is said on stderr."""
    path = tmp_path / "kallsyms"
    path.write_text(alias_first(KALLSYMS))
    for tool, want in (("bpftrace", [f'kprobe:"{V1}"', 'kprobe:"type_show@net_core_net_sysfs_c_116"']),
                       ("ftrace", [V1, "type_show@net_core_net_sysfs_c_116"]),
                       ("fprobe", [f"f:kasalias_fprobe/get_block_fs_minix_itree_common_c_152_fs_minix_itree_v1_c {V1}",
                                   "f:kasalias_fprobe/type_show_net_core_net_sysfs_c_116 type_show@net_core_net_sysfs_c_116"])):
        proc = run_kasalias("probe", "--kallsyms", path, "--for", tool, V1, "type_show@net*")
        assert proc.stdout.splitlines() == want and proc.stderr == "", tool
    assert probe(path, "--for", "fprobe", "--return", V1) == [
        f"f:kasalias_fprobe/get_block_fs_minix_itree_common_c_152_fs_minix_itree_v1_c_ret {V1}%return"]


@pytest.mark.parametrize("name, message", [
    ("type_show", "type_show is not an alias in"),
    ("nothing@*", "nothing@* matches no alias in"),
])
def test_what_is_not_an_alias_is_refused(kallsyms: Path, name: str, message: str) -> None:
    err, rc = probe(kallsyms, "--for", "kprobe", name, check=False)
    assert rc == "1" and err.startswith("kasalias: error: ") and message in err and "\n" not in err


def test_a_kernel_without_aliases_says_so(tmp_path: Path) -> None:
    plain = tmp_path / "kallsyms"
    plain.write_text("ffffffff81000000 T _text\nffffffff81100010 t type_show\nffffffff81200020 t type_show\n")
    err, rc = probe(plain, "--for", "bpftrace", "type_show@*", check=False)
    assert rc == "1" and "without 'make KAS_ALIAS=1'" in err


def test_ftrace_needs_the_addresses_file(kallsyms: Path, tmp_path: Path) -> None:
    err, rc = probe(kallsyms, "--for", "ftrace", "--tracefs", str(tmp_path), V1, check=False)
    assert rc == "1" and "no available_filter_functions_addrs" in err


def test_event_names_are_valid_and_bounded() -> None:
    long = "f" * 40 + "@" + "drivers_" * 20 + "c_1"
    for alias in (V1, long, "a.b@x_c_1"):
        for ret in (False, True):
            name = event_name(alias, ret)
            assert len(name) <= MAX_EVENT_NAME and name.replace("_", "a").isalnum()
    assert event_name(long) != event_name(long + "2") and event_name(long) != event_name(long, True)


def test_bpftrace_fentry_names_the_copys_btf_func(tmp_path: Path) -> None:
    """A copy with a BTF FUNC has its name in kallsyms too (the alias with '.' for '@', at the
    copy's address): fentry/fexit take it; a copy without one is refused with the reason."""
    net = "type_show@net_core_net_sysfs_c_116"
    path = tmp_path / "kallsyms"
    path.write_text(KALLSYMS.replace(f"t {net}\n", f"t {net}\nffffffff81200020 t {net.replace('@', '.')}\n"))
    assert probe(path, "--for", "bpftrace-fentry", net) == ["fentry:vmlinux:type_show.net_core_net_sysfs_c_116"]
    assert probe(path, "--for", "bpftrace-fentry", "--return", "type_show@net*") == [
        "fexit:vmlinux:type_show.net_core_net_sysfs_c_116"]
    err, rc = probe(path, "--for", "bpftrace-fentry", "type_show@kernel_events_core_c_11671", check=False)
    assert rc == "1" and "has no BTF FUNC" in err and "\n" not in err
    # bpftrace 0.25+ attaches fentry only where its traceable list names the function
    tracefs, listing = tmp_path / "tracing", tmp_path / "traceable"
    tracefs.mkdir()
    (tracefs / "available_filter_functions").write_text("type_show\ntype_show\nget_block [minix]\n")
    assert probe(path, "--for", "bpftrace-fentry", "--tracefs", str(tracefs), "--traceable-functions",
                 str(listing), net) == ["fentry:vmlinux:type_show.net_core_net_sysfs_c_116"]
    # at the end of vmlinux's lines: bpftrace takes an image's functions up to the next image's
    assert listing.read_text() == "type_show\ntype_show\ntype_show.net_core_net_sysfs_c_116\nget_block [minix]\n"
    err, rc = probe(path, "--for", "kprobe", "--traceable-functions", str(listing), net, check=False)
    assert rc == "1" and "goes with --for bpftrace-fentry" in err
