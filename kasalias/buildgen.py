"""Generating build fragments: a ninja file and a Make fragment, rendered from templates/.

The graph: one analysis edge (vmlinux.o + every module object ->
modules.symbfreq, modules.symalias; outputs rewritten only when their bytes
change, ``restat = 1``), one edge per group of about 32 modules (their X.ko +
the alias table -> each X.ko.aliased, one process: module_groups), optionally
the vmlinux kallsyms list, and a ``generator = 1``
edge that re-renders both files when modules.order, the templates or kasalias
itself change. The Make fragment starts ninja from one recipe line with ``+``
and no ``-j``, so that ninja takes its job slots from make's jobserver.

Who writes the two files: ``kasalias gen``, one command. Make runs it when the
files are missing or when the command line itself changed (other tools, other
srctree), which a ninja file cannot notice; the generator edge runs the same
command when its inputs changed. Make runs it while remaking its makefiles,
before any recipe starts ninja, so the two never overlap.

Small value objects hold the graph; a registry refuses two producers of one
output; one function quotes ninja text.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from kasalias.errors import KasaliasError
from kasalias.fsutil import check_output, read_text_input, write_text_atomic
from kasalias.series import order_stem

if TYPE_CHECKING:
    import argparse

# Modules per module step (one process, one ninja edge), on average. A process costs about
# 60 ms to start with kasalias imported, a module about 6 ms to write (objcopy's whole rewrite:
# 5 ms): 32 make the start 0.3 ms a module, and touching one module reruns 32 of them (0.25 s).
GROUP_SIZE = 32
NINJA_TEMPLATE = "kasalias.ninja.j2"
_NINJA_VAR = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")
MAKE_TEMPLATE = "kasalias.mk.j2"


def ninja_escape(text: str, *, path: bool = True) -> str:
    """Quote ``text`` for a ninja file: ``$`` always; space and ``:`` too in paths
    (build lines), where they would end a path. A newline, any control byte and, in a path,
    ``|`` cannot be quoted."""
    if not text.isprintable():
        raise KasaliasError(f"{text!r}: a path or command with a newline or another control byte cannot be written to a ninja file")
    if path and "|" in text:  # ninja has no escape for it: it would split the path
        raise KasaliasError(f"{text!r}: a path with '|' cannot be written to a ninja file")
    text = text.replace("$", "$$")
    if path:
        text = text.replace(" ", "$ ").replace(":", "$:")
    return text


def make_word(text: str) -> str:
    """``text`` as one shell word in a Make variable: shell-quoted, ``$`` and ``#`` escaped."""
    if "\n" in text or "\r" in text:
        raise KasaliasError(f"{text!r}: a path with a newline cannot be written to a Make fragment")
    return shlex.quote(text).replace("$", "$$").replace("#", "\\#")


def shell_command(argv: list[str]) -> str:
    """A command line for a ninja rule: each word quoted for the shell, then for ninja;
    ``$name`` words stay ninja variable references."""
    return " ".join(a if _NINJA_VAR.fullmatch(a) else ninja_escape(shlex.quote(a), path=False) for a in argv)


@dataclass(frozen=True)
class Rule:
    """A ninja rule. Its step prints ``  TAG     WHAT``, the Kbuild-style line, before
    running ``command`` (see ``log`` in the template); the same text is the description."""

    name: str
    tag: str  # GEN, KASALIAS, NM
    what: str  # "$out", or a literal path
    command: str  # already ninja-quoted
    restat: bool = False
    generator: bool = False
    echo: bool = True  # False: the command prints its own lines (one per module of a group)

    def _what(self, *, shell: bool) -> str:
        if self.what == "$out":
            return self.what
        return ninja_escape(shlex.quote(self.what) if shell else self.what, path=False)

    @property
    def log_args(self) -> str:
        return f"{self.tag} {self._what(shell=True)}"

    @property
    def description(self) -> str:
        return f"{self.tag:<7} {self._what(shell=False)}"


@dataclass(frozen=True)
class Edge:
    rule: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    implicit: tuple[str, ...] = ()

    def quoted(self) -> dict[str, list[str]]:
        return {"outputs": [ninja_escape(p) for p in self.outputs],
                "inputs": [ninja_escape(p) for p in self.inputs],
                "implicit": [ninja_escape(p) for p in self.implicit]}


@dataclass
class Graph:
    """Rules and edges; refuses a second producer of any output."""

    rules: dict[str, Rule] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # file-level: name = one shell word
    _producers: dict[str, Edge] = field(default_factory=dict)

    def variable(self, name: str, value: str) -> None:
        if name in self.variables:
            raise KasaliasError(f"ninja variable {name} defined twice")
        self.variables[name] = value

    def quoted_variables(self) -> list[tuple[str, str]]:
        """The variables, sorted, each value quoted for the shell (commands use them as words)
        and then for ninja."""
        return [(k, ninja_escape(shlex.quote(v), path=False)) for k, v in sorted(self.variables.items())]

    def defaults(self) -> list[str]:
        """What a plain ``ninja`` builds: every output but the generator's (quoted paths)."""
        return [ninja_escape(o) for e in self.edges if not self.rules[e.rule].generator for o in e.outputs]

    def rule(self, rule: Rule) -> None:
        if rule.name in self.rules:
            raise KasaliasError(f"ninja rule {rule.name} defined twice")
        self.rules[rule.name] = rule

    def build(self, edge: Edge) -> None:
        if edge.rule not in self.rules:
            raise KasaliasError(f"ninja edge uses unknown rule {edge.rule}")
        for i, out in enumerate(edge.outputs):  # also twice in one edge: a module of a group listed twice
            if out in self._producers or out in edge.outputs[:i]:
                raise KasaliasError(f"two build steps produce {out}")
        for out in edge.outputs:
            self._producers[out] = edge
        self.edges.append(edge)


@dataclass(frozen=True)
class GenConfig:
    """What ``kasalias gen`` was given (paths as Make passes them)."""

    objtree: Path
    srctree: Path
    modules_order: str  # relative to objtree
    vmlinux: str  # vmlinux.o or vmlinux, relative to objtree
    ninja_file: str
    make_file: str | None
    python: str
    objcopy: str | None  # None: the module steps use kasalias' own writer
    nm: str
    syms: str | None = None  # vmlinux kallsyms list to write (sample-tree: vmlinux.syms.aliased)
    extra: tuple[str, ...] = ()  # more analyze options (--data, --kernel-version X)
    analysis: bool = True  # False: the analysis runs elsewhere (a kernel's link-vmlinux.sh)
    aliases: str = "modules.symalias"
    symbfreq: str | None = None  # modules built out of tree: alias against these statistics
    module_srctree: str | None = None  # ... with paths relative to this directory
    build: str = ""  # kasalias' build id: in every command, so that another kasalias remakes all
    btf_base: str | None = None  # vmlinux of the modules' split BTF: the module steps add FUNCs to it

    @classmethod
    def from_args(cls, args: argparse.Namespace, build: str) -> GenConfig:
        """The configuration of a parsed ``kasalias gen`` command line."""
        return cls(objtree=args.objtree.resolve(), srctree=args.srctree.resolve(), modules_order=args.modules_order,
                   vmlinux=args.vmlinux, ninja_file=args.ninja_file, make_file=args.make_file,
                   python=args.python, objcopy=args.objcopy, nm=args.nm, syms=args.syms,
                   extra=tuple(args.analyze_option or ()), analysis=not args.no_analysis,
                   aliases=args.aliases, symbfreq=args.symbfreq, module_srctree=args.module_srctree,
                   build=build, btf_base=args.btf_base)

    def argv(self) -> list[str]:
        """The ``kasalias gen`` command line that gives this configuration again (from_args of its
        parse), run from objtree, where ninja runs the generator edge: its objtree is '.'."""
        argv = ["gen", "--objtree", ".", "--srctree", str(self.srctree), "--modules-order", self.modules_order,
                "--vmlinux", self.vmlinux, "--ninja-file", self.ninja_file, "--python", self.python, "--nm", self.nm]
        if self.objcopy:
            argv += ["--objcopy", self.objcopy]
        if self.make_file:
            argv += ["--make-file", self.make_file]
        if self.syms:
            argv += ["--syms", self.syms]
        # one word: an analyze option begins with '-', which argparse would take for an option of gen
        argv += [f"--analyze-option={opt}" for opt in self.extra]
        if not self.analysis:
            argv.append("--no-analysis")
        if self.aliases != "modules.symalias":
            argv += ["--aliases", self.aliases]
        if self.symbfreq:
            argv += ["--symbfreq", self.symbfreq]
        if self.module_srctree:
            argv += ["--module-srctree", self.module_srctree]
        if self.btf_base:
            argv += ["--btf-base", self.btf_base]
        return argv

    def _env(self) -> list[str]:
        from kasalias.buildid import ENV

        return [f"{ENV}={self.build}"] if self.build else []

    def kasalias(self) -> list[str]:
        return [*self._env(), self.python, "-m", "kasalias"]


def templates_dir() -> Path:
    """templates/ of a source checkout, or the copy a wheel ships inside the package."""
    from kasalias.resources import data_dir

    return data_dir("templates")


def template_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def dependency_files() -> list[Path]:
    """kasalias' own files: the generator edge re-renders when one changes."""
    from kasalias.resources import own_files

    return own_files()


def module_objects(cfg: GenConfig) -> list[str]:
    """Module objects of modules.order (one path a line, as Kbuild writes it; the X.ko line
    of 6.1 stands for X.o: series.order_stem)."""
    path = cfg.objtree / cfg.modules_order
    text = read_text_input(path)
    mods = []
    for lineno, line in enumerate(text.split("\n"), 1):  # as analysis reads it: \n alone ends a line
        if not line:
            continue
        stem = order_stem(line)
        if stem is None:
            raise KasaliasError(f"{path}:{lineno}: {line!r} is not a module object (X.o or X.ko)")
        mods.append(stem + ".o")
    return mods


def module_groups(mods: list[str], size: int = GROUP_SIZE) -> list[list[str]]:
    """``mods`` in their order, cut into groups of about ``size``: a group ends after a module
    whose path hashes to 0 modulo ``size`` (CRC-32: the same in every build), or at twice
    ``size``. A module added to or taken from modules.order changes its own group's edge
    only, not every group after it (whose commands ninja would otherwise run again)."""
    groups: list[list[str]] = [[]]
    for m in mods:
        groups[-1].append(m)
        if zlib.crc32(m.encode("utf-8", "surrogateescape")) % size == 0 or len(groups[-1]) == 2 * size:
            groups.append([])
    return [g for g in groups if g]


def build_graph(cfg: GenConfig) -> Graph:
    g = Graph()
    for name, value in (("vmlinux", cfg.vmlinux), ("order", cfg.modules_order), ("objtree", "."),
                        ("srctree", str(cfg.srctree)), ("outdir", "."), ("aliases", cfg.aliases),
                        ("image", "vmlinux"), ("objcopy", cfg.objcopy), ("btf_base", cfg.btf_base)):
        if value is not None:
            g.variable(name, value)
    k = cfg.kasalias()
    g.rule(Rule("kasalias_gen", "GEN", cfg.ninja_file, shell_command(k + cfg.argv()), restat=True, generator=True))
    g.rule(Rule("kasalias_analyze", "KASALIAS", "modules.symalias", shell_command(
        k + ["analyze", "--vmlinux", "$vmlinux", "--modules-order", "$order", "--objtree", "$objtree",
             "--srctree", "$srctree", "-o", "$outdir", *cfg.extra]), restat=True))
    out_of_tree = ["--symbfreq", cfg.symbfreq, "--srctree", cfg.module_srctree or str(cfg.srctree)] \
        if cfg.symbfreq else []
    writer = ["--objcopy", "$objcopy"] if cfg.objcopy else []
    btf = ["--btf-base", "$btf_base"] if cfg.btf_base else []
    # X.ko -> X.ko.aliased for each X.ko of a group; the step prints each module's line and
    # leaves an output whose bytes are the same as they were (restat)
    g.rule(Rule("kasalias_module", "KASALIAS", "$out", shell_command(
        k + ["module", "--aliases", "$aliases", *out_of_tree, *writer, *btf, "--suffix", ".aliased", "$in"]),
        restat=True, echo=False))
    g.build(Edge("kasalias_gen", (cfg.ninja_file,) + ((cfg.make_file,) if cfg.make_file else ()),
                 implicit=(cfg.modules_order, *(str(p) for p in dependency_files()))))
    mods = module_objects(cfg)
    if cfg.analysis:
        g.build(Edge("kasalias_analyze", ("modules.symbfreq", "modules.symalias"),
                     (cfg.vmlinux,), (cfg.modules_order, *mods)))
    for group in module_groups(mods):
        kos = tuple(m[:-2] + ".ko" for m in group)
        g.build(Edge("kasalias_module", tuple(ko + ".aliased" for ko in kos), kos,
                     (cfg.aliases, *([cfg.btf_base] if cfg.btf_base else []))))
    if cfg.syms:
        plain = cfg.syms.removesuffix(".aliased")
        if plain == cfg.syms:
            raise KasaliasError(f"--syms {cfg.syms}: the name must end in .aliased (X.aliased is made from X)")
        g.rule(Rule("kasalias_mksysmap", "NM", "$out",
                    shell_command([cfg.nm, "-n", "$in"]) + " > $out.tmp && mv $out.tmp $out"))
        g.rule(Rule("kasalias_syms", "KASALIAS", "$out", shell_command(
            k + ["syms", "--aliases", "$aliases", "--image", "$image", "$in", "$out"])))
        g.build(Edge("kasalias_mksysmap", (plain,), ("vmlinux",)))
        g.build(Edge("kasalias_syms", (cfg.syms,), (plain,), (cfg.aliases, "vmlinux")))
    return g


def _check_distinct(cfg: GenConfig) -> None:
    """The ninja file and the Make fragment must be two files: written to one path, the second
    would replace the first, and ninja cannot read a Make fragment. Compared as the files they
    name (x, ./x, d/../x, a link to a directory, two hard links), not as strings."""
    if cfg.make_file is None:
        return
    make, ninja = (os.path.realpath(os.path.join(cfg.objtree, p)) for p in (cfg.make_file, cfg.ninja_file))
    if make == ninja or (os.path.exists(make) and os.path.exists(ninja) and os.path.samefile(make, ninja)):
        raise KasaliasError(f"--make-file {cfg.make_file} and --ninja-file {cfg.ninja_file} are the same file "
                            f"({ninja}): give two names")


def render(cfg: GenConfig) -> dict[str, str]:
    """The files to write, by path relative to objtree."""
    for p in (str(cfg.objtree), str(cfg.srctree)):
        if any(c.isspace() for c in p):
            raise KasaliasError(f"{p!r}: Kbuild does not support white space in build paths")
    _check_distinct(cfg)
    graph = build_graph(cfg)
    env = template_env()
    ctx = {
        "template": NINJA_TEMPLATE,
        "builddir": ninja_escape(posixpath.join(posixpath.dirname(cfg.ninja_file), ".kasalias"), path=False),
        "variables": graph.quoted_variables(),
        "rules": list(graph.rules.values()),
        "edges": [e.quoted() | {"rule": e.rule} for e in graph.edges],
        "defaults": graph.defaults(),
    }
    out = {cfg.ninja_file: env.get_template(NINJA_TEMPLATE).render(ctx)}
    if cfg.make_file:
        out[cfg.make_file] = env.get_template(MAKE_TEMPLATE).render(
            template=MAKE_TEMPLATE, ninja=make_word(ninja_binary()), ninja_file=make_word(cfg.ninja_file))
    return out


def ninja_binary() -> str:
    """The ninja of the PyPI package, which joins make's jobserver (also its 'pipe' kind)."""
    try:
        import ninja
    except ImportError:
        raise KasaliasError("the Python package 'ninja' is not installed") from None
    path = Path(ninja.BIN_DIR or ".") / "ninja"
    if not path.is_file():
        raise KasaliasError("the Python package 'ninja' has no ninja program")
    return str(path)


def generate(cfg: GenConfig) -> list[str]:
    """Write the fragments (atomically, only when their text changes); return what changed."""
    changed = []
    files = render(cfg)
    for rel in files:
        check_output(cfg.objtree / rel, cfg.objtree / cfg.modules_order, cfg.objtree / cfg.vmlinux)
    for rel, text in files.items():
        if write_text_atomic(cfg.objtree / rel, text, only_if_changed=True):
            changed.append(rel)
    return changed
