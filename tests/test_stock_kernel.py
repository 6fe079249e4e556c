"""A kernel nobody rebuilt: Debian's own linux-image-6.12.*-cloud-amd64, booted in QEMU with
its own modules, and its -dbg package indexed on the host ('kasalias index'). From what the
guest prints (all of /proc/kallsyms, the build IDs), 'kasalias lookup' resolves every alias of
vmlinux and of the loaded modules to where the guest holds the named original, with livepatch's
sympos; then, in a second guest, kprobes on the resolved addresses fire on the named copy
alone, where the bare duplicated names are refused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run_kasalias
from kasalias.index import Index, notes_build_id

pytestmark = pytest.mark.e2e
E2E = ROOT / "tests" / "e2e"
CACHE = Path(os.environ.get("KASALIAS_CACHE") or "/var/cache/kasalias")
MODULES = ["md-mod", "libnvdimm"]  # no dependencies, load without hardware, have aliases
# The copies the second guest calls (a read of /sys/class/net/lo/type is net-sysfs' type_show;
# md0's md/metadata_version is md.c's metadata_show) and copies of the same names it must not.
VMLINUX_HIT, VMLINUX_MISS = "type_show@net_core_net_sysfs_c_", "type_show@kernel_events_core_c_"
MODULE_HIT, MODULE_MISS = "metadata_show@drivers_md_md_c_", "metadata_show@drivers_md_md_bitmap_c_"
TRIGGERS = "cat /sys/class/net/lo/type\ncat /sys/block/md0/md/metadata_version\n"


def sh(*argv: object, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Debian's cloud kernel (image and -dbg of one version), the index of its debug package,
    and an initramfs maker (gen_init_cpio built from the kernel's own source)."""
    out = dict(line.split("=", 1) for line in sh(ROOT / "tools" / "fetch-debian-dbg").splitlines() if "=" in line)
    vmlinux, moddir = Path(out["vmlinux"]), Path(out["modules"])
    release = vmlinux.name.removeprefix("vmlinux-")
    image = Path(sh(E2E / "fetch-debian-image", f"linux-image-{release}-unsigned").split()[-1])
    d = tmp_path_factory.mktemp("stock")
    index = d / "kernel.index"
    run_kasalias("index", "--vmlinux", vmlinux, "--modules-dir", moddir, "--kernel-version", "6.12", "-o", index)
    src = Path(sh(ROOT / "tools" / "fetch-linux-source", "6.12").split()[-1])
    (d / "usr").mkdir()
    sh("gcc", "-O2", "-o", d / "usr" / "gen_init_cpio", src / "usr" / "gen_init_cpio.c")
    staging = d / "staging"
    for m in MODULES:
        (f,) = (image / "lib" / "modules" / release).rglob(f"{m}.ko*")
        dst = staging / f.relative_to(image)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)
    (d / "modules.txt").write_text("".join(m + "\n" for m in MODULES))
    return {"dir": d, "index": index, "bzimage": image / "boot" / f"vmlinuz-{release}", "staging": staging}


def boot(stock: dict[str, Path], name: str, append: str, extra: dict[str, str]) -> str:
    d = stock["dir"]
    files = [f"{d / 'modules.txt'}:/modules.txt"]
    for dest, text in extra.items():
        (d / f"{name}-{dest}").write_text(text)
        files.append(f"{d / f'{name}-{dest}'}:/{dest}")
    initrd = d / f"{name}.cpio"
    sh(E2E / "mkinitramfs", "-b", d, "-t", E2E / "stock-kernel-test.sh", "-m", stock["staging"],
       *[a for f in files for a in ("-f", f)], initrd)
    log = d / f"{name}.log"
    subprocess.run([str(E2E / "boot"), "-t", "900", "-o", str(log), *(["-a", append] if append else []),
                    str(stock["bzimage"]), str(initrd)], capture_output=True, text=True,
                   env=dict(os.environ, QEMU_MEM="1G"))
    text = log.read_text(errors="replace")
    assert "KASALIAS-E2E-END rc=0" in text, text[-3000:]
    assert all(f"E2E-MODPROBE ok {m}" in text for m in MODULES), re.findall(r"E2E-MODPROBE.*", text)
    return text


def dump(log: str, d: Path, name: str) -> tuple[Path, list[str]]:
    """The guest's /proc/kallsyms as a file, and the lookup options for its build IDs."""
    m = re.search(r"E2E-KALLSYMS-BEGIN all\n(.*?)E2E-KALLSYMS-END all", log, re.S)
    assert m
    path = d / f"{name}.kallsyms"
    path.write_text("".join(line[6:] + "\n" for line in m.group(1).splitlines() if line.startswith("E2E-K ")))
    ids = dict(line.split()[1:3] for line in log.splitlines() if line.startswith("E2E-BUILDID ") and
               len(line.split()) == 3)
    opts = ["--build-id", notes_build_id(bytes.fromhex(ids.pop("vmlinux")))]
    for module, notes in sorted(ids.items()):
        opts += ["--module-build-id", f"{module}={notes_build_id(bytes.fromhex(notes))}"]
    return path, opts


def lookup(stock: dict[str, Path], kallsyms: Path, opts: list[str], aliases: list[str]) -> dict[str, tuple[int, str]]:
    out = run_kasalias("lookup", "--index", stock["index"], "--kallsyms", kallsyms, *opts, *aliases).stdout
    return {f[1]: (int(f[0], 16), f[2].strip("[]")) for f in (line.split() for line in out.splitlines())}


@pytest.fixture(scope="module")
def first_boot(stock: dict[str, Path]) -> str:
    return boot(stock, "kaslr", "", {})


def test_every_alias_resolves_to_its_original(stock: dict[str, Path], first_boot: str) -> None:
    """With KASLR: every alias of vmlinux and of the loaded modules resolves to an address where
    the guest's kallsyms holds the original name in that object, and its sympos is that
    address's position among the object's same-named entries (vmlinux: address order; a
    module: the order the kernel lists them)."""
    kallsyms, opts = dump(first_boot, stock["dir"], "kaslr")
    loaded = {m.replace("-", "_") for m in MODULES}
    entries = [e for e in Index.read(stock["index"]).entries if e.image == "vmlinux" or e.image in loaded]
    assert {e.image for e in entries} == {"vmlinux", *loaded} and len(entries) > 900
    got = lookup(stock, kallsyms, opts, [e.alias for e in entries])
    lines = [l.split() for l in kallsyms.read_text().splitlines()]
    by_name: dict[tuple[str, str], list[int]] = {}
    for f in lines:
        by_name.setdefault((f[3].strip("[]") if len(f) > 3 else "vmlinux", f[2]), []).append(int(f[0], 16))
    text = [l for f in lines if f[2] == "_text" for l in [int(f[0], 16)]]
    assert text and text[0] != Index.read(stock["index"]).text  # KASLR moved vmlinux
    for e in entries:
        address, image = got[e.alias]
        copies = by_name[(e.image, e.symbol)]
        order = sorted(copies) if e.image == "vmlinux" else copies
        assert address in copies, e
        assert order.index(address) + 1 == e.sympos, e
    # the same index again, written into another directory: the same bytes
    other = stock["dir"] / "another-directory" / "kernel.index"
    other.parent.mkdir()
    dbg = dict(line.split("=", 1) for line in sh(ROOT / "tools" / "fetch-debian-dbg").splitlines() if "=" in line)
    run_kasalias("index", "--vmlinux", dbg["vmlinux"], "--modules-dir", dbg["modules"], "--kernel-version", "6.12",
                 "-o", other)
    assert other.read_bytes() == stock["index"].read_bytes()
    # a debug package of another kernel: refused
    wrong = ["--build-id", "0" * 40, *opts[2:]]
    proc = run_kasalias("lookup", "--index", stock["index"], "--kallsyms", kallsyms, *wrong, entries[0].alias,
                        check=False)
    assert proc.returncode == 1 and "a debug package of another kernel" in proc.stderr


def test_kprobes_on_resolved_aliases_fire_on_that_copy(stock: dict[str, Path]) -> None:
    """Without KASLR (so that two boots agree): addresses from the first guest's kallsyms,
    kprobes on them in the second; each fires on its copy alone (3 calls: 3 hits, the other
    copy 0), where the bare names are refused (not unique)."""
    kallsyms, opts = dump(boot(stock, "nokaslr", "nokaslr", {}), stock["dir"], "nokaslr")
    names = {e.alias for e in Index.read(stock["index"]).entries}
    chosen = {key: next(a for a in sorted(names) if a.startswith(prefix))
              for key, prefix in (("vhit", VMLINUX_HIT), ("vmiss", VMLINUX_MISS), ("mhit", MODULE_HIT),
                                  ("mmiss", MODULE_MISS))}
    got = lookup(stock, kallsyms, opts, list(chosen.values()))
    probes = "".join(f"{key} 0x{got[alias][0]:x}\n" for key, alias in chosen.items())
    probes += "bare_type_show type_show\nbare_metadata_show md_mod:metadata_show\n"
    log = boot(stock, "kprobes", "nokaslr", {"kprobes.txt": probes,
                                             "triggers.txt": "echo md0 > /sys/module/md_mod/parameters/new_array\n"
                                                             + TRIGGERS})
    kp = [l.split(None, 3) for l in log.splitlines() if l.startswith("E2E-KPROBE ")]
    verdict = {f[2]: f[1] for f in kp}
    assert all(verdict[k] == "accepted" for k in chosen), kp
    assert verdict["bare_type_show"] == verdict["bare_metadata_show"] == "rejected", kp
    hits = {f[1].split("/")[-1]: int(f[2]) for f in (l.split() for l in log.splitlines() if l.startswith("E2E-HITS "))}
    # 3 reads of lo/type: 3 calls; md's sysfs show runs more than once per read of a file, as
    # many times each read: a multiple of 3. The other copies: none.
    assert (hits["vhit"], hits["vmiss"], hits["mmiss"]) == (3, 0, 0) and hits["mhit"] % 3 == 0 < hits["mhit"], hits
