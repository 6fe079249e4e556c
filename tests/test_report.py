"""kasalias report's table: the summary and the problems first, then the covered names."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import run_kasalias

SOURCE = """\
static int algs[4] = {%d, 2, 3, 4};
static int __attribute__((noinline)) name_show(int i) { algs[i & 3] += i; return algs[0]; }
int %s_entry(int i) { return name_show(i); }
"""


def test_table_leads_with_summary_and_problems(tmp_path: Path) -> None:
    for n, (unit, debug) in enumerate((("a", ["-g"]), ("b", ["-g"]), ("c", []))):  # c.o: no DWARF
        (tmp_path / f"{unit}.c").write_text(SOURCE % (n, unit))
        subprocess.run(["gcc", "-O2", *debug, "-c", f"{unit}.c"], check=True, cwd=tmp_path)
    subprocess.run(["ld", "-r", "-o", "vmlinux.o", "a.o", "b.o", "c.o"], check=True, cwd=tmp_path)
    args = ("report", "--vmlinux", tmp_path / "vmlinux.o", "--kernel-version", "6.12")
    lines = run_kasalias(*args).stdout.splitlines()
    assert lines[0] == ("# kasalias report: 2 duplicated names, 1 of them covered by the policy (text), "
                        "2 aliases, 1 problems")
    assert lines[2] == "# problems (1):" and "name_show: no source location in DWARF" in lines[3]
    body = [l for l in lines if not l.startswith("#")]
    assert body[0] == "name_show  (3 copies)" and len(body) == 4  # algs (data) is left out
    assert {l.split()[-1] for l in body[1:]} == {"name_show@a_c_2", "name_show@b_c_2", "-"}
    full = [l for l in run_kasalias(*args, "--all").stdout.splitlines() if not l.startswith("#")]
    assert full[0] == "algs  (3 copies)" and full[1].endswith("(not covered by policy)")
