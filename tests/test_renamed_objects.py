"""Objects linked with every symbol renamed (arm64's KVM hypervisor, __kvm_nvhe_; early boot
code, __pi_): their DWARF names the C function, the symbol carries the prefix."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import run_kasalias

SOURCE = """\
static int __attribute__((noinline)) hyp_phys_to_virt(int i) { return i + %d; }
int %s_entry(int i) { return hyp_phys_to_virt(i); }
"""


def test_prefixed_copies_get_aliases(tmp_path: Path) -> None:
    for n, unit in enumerate(("hyp_a", "hyp_b", "plain")):
        (tmp_path / f"{unit}.c").write_text(SOURCE % (n, unit))
        subprocess.run(["gcc", "-O2", "-g", "-c", "-o", str(tmp_path / f"{unit}.o"), f"{unit}.c"],
                       check=True, cwd=tmp_path)
    for unit, prefix in (("hyp_a", "__kvm_nvhe_"), ("hyp_b", "__kvm_nvhe_"), ("plain", "__pi_")):
        subprocess.run(["objcopy", f"--prefix-symbols={prefix}", f"{unit}.o"], check=True, cwd=tmp_path)
    # a fourth copy under its own name, so that __pi_hyp_phys_to_virt is duplicated too
    (tmp_path / "pi2.c").write_text(SOURCE % (7, "pi2"))
    subprocess.run(["gcc", "-O2", "-g", "-c", "pi2.c"], check=True, cwd=tmp_path)
    subprocess.run(["objcopy", "--prefix-symbols=__pi_", "pi2.o"], check=True, cwd=tmp_path)
    subprocess.run(["ld", "-r", "-o", "vmlinux.o", "hyp_a.o", "hyp_b.o", "plain.o", "pi2.o"], check=True, cwd=tmp_path)
    report = json.loads(run_kasalias("report", "--vmlinux", tmp_path / "vmlinux.o", "--kernel-version", "6.12",
                                     "--srctree", tmp_path, "--json").stdout)
    got = {n["name"]: sorted(c["alias"] for c in n["copies"]) for n in report["names"]}
    assert got["__kvm_nvhe_hyp_phys_to_virt"] == ["__kvm_nvhe_hyp_phys_to_virt@hyp_a_c_1",
                                                  "__kvm_nvhe_hyp_phys_to_virt@hyp_b_c_1"]
    assert got["__pi_hyp_phys_to_virt"] == ["__pi_hyp_phys_to_virt@pi2_c_1", "__pi_hyp_phys_to_virt@plain_c_1"]
