"""Command line: ``kasalias SUBCOMMAND ...`` (also ``python -m kasalias``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

from kasalias.errors import KasaliasError

# The commands import what only they need (pyelftools, jinja2, the DWARF reader) when they run.
if TYPE_CHECKING:
    from kasalias.index import Index, Kernel
    from kasalias.kallsyms_rules import VmlinuxRules
    from kasalias.policy import Policy
    from kasalias.srcloc import PathMapper


def _log() -> logging.Logger:
    return logging.getLogger("kasalias")


def _setup_logging(verbose: int) -> None:
    class Formatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"kasalias: {record.levelname.lower()}: {record.getMessage()}"

    handler = logging.StreamHandler()
    handler.setFormatter(Formatter())
    logging.basicConfig(handlers=[handler], level=logging.WARNING - 10 * min(verbose, 2))


def _paths_mapper(args: argparse.Namespace) -> PathMapper:
    from kasalias.srcloc import PathMapper

    return PathMapper(os.path.realpath(args.srctree) if args.srctree else None,
                      os.path.realpath(args.objtree) if args.objtree else None)


def _rules(args: argparse.Namespace) -> VmlinuxRules:
    from kasalias.kallsyms_rules import builtin_rules
    from kasalias.kallsyms_tree import rules_from_tree
    from kasalias.series import DEFAULT_SERIES, parse_series

    tree = args.rules_tree or args.srctree
    if tree is not None and (tree / "scripts" / "mksysmap").is_file():
        return rules_from_tree(tree)
    if args.kernel_version:
        version = parse_series(args.kernel_version, release=True)  # 6.12, or a release: 6.12.117
        if version is None:
            raise KasaliasError(f"--kernel-version {args.kernel_version!r}: expected MAJOR.MINOR, e.g. 6.12")
        return builtin_rules(version)
    return builtin_rules(DEFAULT_SERIES)


def _module_list(args: argparse.Namespace) -> list[Path]:
    """Module objects from --modules-order (Kbuild's modules.order) and --module."""
    mods: list[Path] = []
    if args.modules_order:
        from kasalias.analysis import modules_from_order

        mods = modules_from_order(args.modules_order, args.objtree or args.modules_order.parent)
    mods.extend(getattr(args, "module", None) or [])
    if getattr(args, "modules_dir", None):
        d: Path = args.modules_dir
        if not d.is_dir():
            raise KasaliasError(f"{d}: not a directory")
        mods.extend(sorted(p for p in d.rglob("*.ko") if p.is_file()))
    for m in mods:
        if not m.is_file():
            raise KasaliasError(f"{m}: no such module file")
    return mods


def _policy(args: argparse.Namespace) -> Policy:
    from kasalias.policy import Policy

    return Policy(text=not args.no_text, data=args.data)


def cmd_analyze(args: argparse.Namespace) -> int:
    from kasalias.analysis import analyze, load_images
    from kasalias.srcloc import UnitCache

    from kasalias.fsutil import check_output

    modules = _module_list(args)
    out: Path = args.output_dir
    inputs = (args.vmlinux, args.modules_order, *modules)
    for o in (out / "modules.symbfreq", out / "modules.symalias", args.cache):
        if o is not None:
            check_output(o, *inputs)
    images = load_images(args.vmlinux, modules, _rules(args))
    paths = _paths_mapper(args)
    cache = UnitCache(args.cache, paths.srctree) if args.cache else None
    result = analyze(images, paths, _policy(args), cache=cache)
    for p in result.problems:
        _log().warning("%s", p)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KasaliasError(f"{out}: cannot make the output directory: {e.strerror}") from None
    result.table.placement = args.placement
    result.freq.write(out / "modules.symbfreq")
    result.table.write(out / "modules.symalias")
    if cache is not None:
        cache.save()
    _log().info("%d names, %d aliases; source identities of %d symbols: %.2f s CPU", len(result.freq.counts),
                len(result.table.rows), result.located, result.identity_seconds)
    return 0


def cmd_syms(args: argparse.Namespace) -> int:
    from kasalias.aliastable import AliasTable
    from kasalias.fsutil import check_output
    from kasalias.syms import add_aliases

    check_output(args.output, args.input, args.image, args.aliases, args.btf)
    btf_funcs = frozenset()
    if args.btf is not None:
        from kasalias.fentry import copy_func_names

        btf_funcs = copy_func_names(args.btf)
    n = add_aliases(args.input, args.image, AliasTable.read(args.aliases), args.output, btf_funcs)
    _log().info("%s: %d aliases added", args.output, n)
    return 0


def cmd_btf(args: argparse.Namespace) -> int:
    from kasalias.aliastable import AliasTable
    from kasalias.fentry import vmlinux_copy_funcs
    from kasalias.fsutil import check_output

    check_output(args.output, args.input, args.dwarf, args.aliases)
    added, problems = vmlinux_copy_funcs(args.input, args.output, args.dwarf, AliasTable.read(args.aliases),
                                         _paths_mapper(args))
    for p in problems:  # compiler clones and copies ftrace cannot patch: on every kernel, so not warnings
        _log().info("%s", p)
    _log().info("%s: %d BTF FUNCs added (fentry/fexit on one copy), %d copies left out", args.output, added,
                len(problems))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from kasalias.analysis import analyze, load_images
    from kasalias.report import render_json, render_text

    from kasalias.fsutil import check_output

    policy = _policy(args)
    modules = _module_list(args)
    if args.output:
        check_output(args.output, args.vmlinux, *modules)
    images = load_images(args.vmlinux, modules, _rules(args))
    result = analyze(images, _paths_mapper(args), policy, collect=True)
    text = render_json(result, policy) if args.json else render_text(result, policy, args.all)
    if args.output:
        from kasalias.fsutil import write_text_atomic

        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from kasalias.analysis import analyze, load_images
    from kasalias.fsutil import check_output
    from kasalias.index import make_index

    modules = _module_list(args)
    check_output(args.output, args.vmlinux, *modules)
    images = load_images(args.vmlinux, modules, _rules(args))
    result = analyze(images, _paths_mapper(args), _policy(args), collect=True)
    for p in result.problems:
        _log().warning("%s", p)
    index = make_index(result, images[0], modules)
    index.write(args.output)
    _log().info("%s: %d aliases of %d images", args.output, len(index.entries), len(index.build_ids))
    return 0


def _kernel(args: argparse.Namespace, patterns: list[str] | None = None) -> tuple[Index | None, Kernel]:
    """The kernel (the running one, or a saved kallsyms with its build IDs) and the index that
    names its copies: --index; None where its kallsyms lists the aliases itself (a kernel built
    with KAS_ALIAS, read as it always was: no index, no network); else the index of its debug
    info, fetched by build ID from debuginfod and cached (kasalias/debuginfod.py). ``patterns``:
    the aliases asked for (None: every one), which tell the modules whose debug info it needs."""
    from kasalias.index import Index, Kernel

    if args.build_id is not None and args.kallsyms is None:
        raise KasaliasError("--build-id goes with --kallsyms (a saved copy of another system's kallsyms)")
    modules: dict[str, str] = {}
    for m in args.module_build_id or ():
        name, eq, value = m.partition("=")
        if not (name and eq and value):
            raise KasaliasError(f"--module-build-id {m!r}: expected MODULE=HEX")
        modules[name] = value.lower()  # as notes_build_id() and the index write them
    build_id = args.build_id.lower() if args.build_id is not None else None
    if args.index:
        return Index.read(args.index), Kernel(args.kallsyms, build_id, modules)
    kernel = Kernel(args.kallsyms, build_id, modules)
    if any("@" in line.name for line in kernel.lines):
        _log().info("%s lists aliases (a kernel built with 'make KAS_ALIAS=1'): they name the copies", kernel.where)
        if args.build_id is not None or modules:
            raise KasaliasError(f"--build-id and --module-build-id go with --index, or with a kallsyms that lists no "
                                f"aliases; {kernel.where} lists them")
        return None, kernel
    from kasalias.debuginfod import index_for

    _log().info("%s lists no aliases: the index of the kernel's debug info, by build ID", kernel.where)
    return index_for(kernel, patterns), kernel


def cmd_lookup(args: argparse.Namespace) -> int:
    from kasalias.index import entries_for

    index, kernel = _kernel(args, args.alias)
    if index is None:
        raise KasaliasError(f"{kernel.where} lists the aliases itself (a kernel built with 'make KAS_ALIAS=1'): "
                            "each alias's line there has its address and module, and 'kasalias probe' gives the "
                            "probe of each tracer; --index FILE resolves an index's aliases instead")
    resolved = kernel.resolve(index, entries_for(index, args.alias))
    for r in resolved:
        e = r.entry
        where = "" if e.image == "vmlinux" else f"[{e.image}]"
        address = f"{r.address:016x}" if r.address is not None else "-" * 16
        sys.stdout.write(f"{address} {e.alias} {where or '[vmlinux]'} {e.symbol} sympos={e.sympos} {e.decl}"
                         f"{'  (' + r.missing + ')' if r.missing else ''}\n")
    missing = [r for r in resolved if r.address is None]
    if missing:
        raise KasaliasError(f"{len(missing)} of {len(resolved)} aliases not resolved: {missing[0].missing}")
    return 0


def cmd_kallsyms(args: argparse.Namespace) -> int:
    from kasalias.index import with_aliases

    index, kernel = _kernel(args)
    if index is None:
        raise KasaliasError(f"{kernel.where} lists the aliases itself (a kernel built with 'make KAS_ALIAS=1'): "
                            "nothing to add; --index FILE adds an index's aliases instead")
    text = with_aliases(kernel, kernel.resolve(index, index.entries))
    if args.output:
        from kasalias.fsutil import check_output, write_text_atomic

        check_output(args.output, args.index, args.kallsyms)
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from kasalias.probe import probes, targets, targets_from_index

    index, kernel = _kernel(args, args.alias)
    if index is not None:  # --index, or a kernel without the aliases: by address
        found = targets_from_index(index, kernel, args.alias)
    else:  # the kernel lists the aliases
        found = targets(kernel.lines, args.alias, kernel.where)
    lines = probes(args.tool, found, args.ret, args.tracefs)
    if args.traceable_functions is not None:
        from kasalias.fsutil import write_atomic
        from kasalias.probe import traceable_functions

        if args.tool != "bpftrace-fentry":
            raise KasaliasError("--traceable-functions goes with --for bpftrace-fentry")
        write_atomic(args.traceable_functions, traceable_functions(found, args.tracefs))
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def cmd_module(args: argparse.Namespace) -> int:
    from kasalias.fsutil import check_output
    from kasalias.modwriter import ModuleStep

    if args.suffix is None:
        if len(args.files) != 2:
            raise KasaliasError("module: expected INPUT OUTPUT, or --suffix SUFFIX and any number of inputs")
        pairs = [(args.files[0], args.files[1])]
    else:
        if not args.suffix or "/" in args.suffix:
            raise KasaliasError(f"--suffix {args.suffix!r}: expected the end of a file name, e.g. .aliased")
        pairs = [(f, f + args.suffix) for f in args.files]
        for _src, dst in pairs:  # no output may be another module's input: it is written by rename
            check_output(dst, *args.files)
    out_of_tree = args.symbfreq is not None  # aliased against the shipped frequencies
    step = ModuleStep(args.aliases, args.symbfreq, _paths_mapper(args) if out_of_tree else None,
                      _policy(args) if out_of_tree else None, args.objcopy, args.btf_base)
    echo = bool(os.environ.get("KASALIAS_ECHO"))  # the Kbuild-style line of each module (buildgen)
    for src, dst in pairs:
        if echo:
            sys.stdout.write(f"  {'KASALIAS':<7} {dst}\n")
        n = step.run(src, dst)
        _log().info("%s: %d aliases", dst, n)
    return 0


def cmd_gen(args: argparse.Namespace) -> int:
    from kasalias import buildid
    from kasalias.buildgen import GenConfig, generate

    cfg = GenConfig.from_args(args, buildid.build_id())
    for rel in generate(cfg):
        _log().info("wrote %s", rel)
    return 0


def cmd_repro_check(args: argparse.Namespace) -> int:
    from kasalias.reprocheck import repro_check

    return repro_check(args.tree, keep=args.keep)


def _series(text: str) -> tuple[int, int]:
    from kasalias.series import parse_series

    version = parse_series(text)
    if version is None:
        raise argparse.ArgumentTypeError(f"not a series X.Y: {text!r}")
    return version


def cmd_kbuild(args: argparse.Namespace) -> int:
    from kasalias.kbuild import apply

    ksrc: Path = args.ksrc
    if not ksrc.is_dir():
        raise KasaliasError(f"{ksrc}: not a directory")
    changed = apply(ksrc, install=args.action == "install", as_series=args.series)
    for name in changed:
        _log().info("%s %s", "hooked" if args.action == "install" else "restored", name)
    if not changed:
        _log().info("%s: nothing to do", ksrc)
    return 0


def _kernel_args(p: argparse.ArgumentParser, index_required: bool) -> None:
    """The running kernel (or a saved copy) and, for a kernel built without aliases, the index.
    No command requires --index any more (``index_required``, lookup's and kallsyms', only
    words the help): without it the index is made from debug info fetched by build ID."""
    p.add_argument("--index", type=Path,
                   help="the file 'kasalias index' wrote, for a kernel built without the aliases (a "
                   "distribution's); default: the index of its debug info, fetched by build ID from the debuginfod "
                   "servers of $DEBUGINFOD_URLS and cached ($DEBUGINFOD_CACHE_PATH, else ~/.cache/kasalias)" +
                   ("" if index_required else "; a kernel built with the aliases needs none"))
    p.add_argument("--kallsyms", type=Path, help="a saved /proc/kallsyms (default: the running kernel's)")
    p.add_argument("--build-id", help="with --kallsyms: the build ID of that kernel (/sys/kernel/notes), which the "
                   "index must be of, or whose debug info is fetched")
    p.add_argument("--module-build-id", action="append", metavar="MODULE=HEX",
                   help="with --kallsyms: a module's build ID (/sys/module/M/notes/.note.gnu.build-id)")


def _common_tree_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--srctree", type=Path, help="the kernel source tree (paths in aliases are relative to it)")
    p.add_argument("--objtree", type=Path, help="the build directory (O=), where modules.order paths start")
    p.add_argument("--rules-tree", type=Path,
                   help="read kallsyms rules (scripts/mksysmap) from this kernel tree (default: --srctree)")
    p.add_argument("--kernel-version", help="built-in kallsyms rules for this version when no tree is given")
    p.add_argument("--data", action="store_true", help="alias duplicated data symbols too")
    p.add_argument("--no-text", action="store_true", help="do not alias text symbols")
    p.add_argument("--modules-order", type=Path, help="Kbuild's modules.order")
    p.add_argument("--module", type=Path, action="append", help="a module object or .ko (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    class _BuildId(argparse.Action):
        def __init__(self, option_strings: list[str], dest: str, **kw: object) -> None:
            super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)  # type: ignore[arg-type]

        def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
            from kasalias.buildid import build_id

            sys.stdout.write(build_id() + "\n")
            parser.exit(0)

    class _Version(argparse.Action):
        """argparse's version action, with the version read only when asked: package metadata
        (importlib.metadata) would cost every command's start-up."""

        def __init__(self, option_strings: list[str], dest: str, **kw: object) -> None:
            super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)  # type: ignore[arg-type]

        def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
            from kasalias.resources import version

            sys.stdout.write(f"kasalias {version()}\n")
            parser.exit(0)

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            # One line, like every other kasalias error (argparse would add a usage block).
            self.exit(2, f"kasalias: error: {message} (see 'kasalias {self.prog.split()[-1]} --help')\n"
                      if " " in self.prog else f"kasalias: error: {message} (see 'kasalias --help')\n")

    parser = _Parser(prog="kasalias", description="Unique, source-derived kallsyms aliases for duplicated kernel symbol names.")
    parser.add_argument("--version", action=_Version, help="show kasalias' version and exit")
    parser.add_argument("--build-id", action=_BuildId, help="print the identity of this kasalias (a hash of its "
                        "files), which every build output depends on, and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more messages (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, **kw: Any) -> argparse.ArgumentParser:
        """A subcommand; its help line is also its --help page's description."""
        kw.setdefault("description", kw["help"][0].upper() + kw["help"][1:] + ".")
        return sub.add_parser(name, **kw)

    from kasalias.aliastable import ALIAS_FIRST, ORIGINAL_FIRST

    p = command("analyze", help="vmlinux + modules -> modules.symbfreq and the alias table")
    p.add_argument("--vmlinux", type=Path, required=True, help="vmlinux.o or vmlinux, with DWARF")
    _common_tree_args(p)
    p.add_argument("-o", "--output-dir", type=Path, default=Path("."),
                   help="where modules.symbfreq and modules.symalias go (default: .)")
    p.add_argument("--cache", type=Path,
                   help="keep per-object results here, so that a relink rescans changed objects only")
    p.add_argument("--alias-first", dest="placement", action="store_const", const=ALIAS_FIRST,
                   default=ORIGINAL_FIRST,
                   help="put each alias before its original (vmlinux and modules): the alias becomes the name "
                   "the kernel gives the address (ftrace, fprobe, bpftrace's checks, backtraces, %%pS); "
                   "default: after it ('make KAS_ALIAS=first' vs 'KAS_ALIAS=1')")
    p.set_defaults(func=cmd_analyze)

    p = command("syms", help="a mksysmap .syms file -> a NEW one with alias lines, for scripts/kallsyms")
    p.add_argument("--aliases", type=Path, required=True, help="modules.symalias from 'kasalias analyze'")
    p.add_argument("--image", type=Path, required=True, help="the image the .syms file was made from")
    p.add_argument("--btf", type=Path, help="vmlinux's BTF as 'kasalias btf' wrote it: each alias whose BTF "
                   "spelling is a FUNC there gets that name too (fentry/fexit find the copy by it)")
    p.add_argument("input", type=Path, help="the .syms file (not modified)")
    p.add_argument("output", type=Path, help="the new file")
    p.set_defaults(func=cmd_syms)

    p = command("btf", help="vmlinux's BTF -> a NEW one with a FUNC for each aliased function copy, named as "
                "its alias with '.' for '@' (fentry/fexit on one copy)")
    p.add_argument("--aliases", type=Path, required=True, help="modules.symalias from 'kasalias analyze'")
    p.add_argument("--dwarf", type=Path, required=True,
                   help="the image pahole read (or vmlinux.o): each copy's signature comes from its DWARF")
    p.add_argument("--srctree", type=Path, help="the kernel source tree")
    p.add_argument("--objtree", type=Path, help="the build directory")
    p.add_argument("input", type=Path, help="raw BTF (pahole's detached output) or an object file with a .BTF "
                   "section (not modified)")
    p.add_argument("output", type=Path, help="the new file, in the input's form (an object file: its .BTF "
                   "replaced, no program headers)")
    p.set_defaults(func=cmd_btf)

    p = command("report", help="duplicated names of a built kernel, their sources and aliases")
    p.add_argument("--vmlinux", type=Path, required=True, help="vmlinux with DWARF (e.g. from a -dbg package)")
    p.add_argument("--modules-dir", type=Path, help="a directory searched for *.ko files")
    _common_tree_args(p)
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.add_argument("--all", action="store_true", help="the table also lists names and copies the policy "
                   "does not cover (JSON always has them)")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    p.set_defaults(func=cmd_report)

    p = command("index", help="a distribution kernel's debug vmlinux and modules -> the index that "
                       "'lookup' and 'kallsyms' resolve on the running kernel (no rebuild)")
    p.add_argument("--vmlinux", type=Path, required=True, help="vmlinux with DWARF (e.g. from a -dbg package)")
    p.add_argument("--modules-dir", type=Path, help="a directory searched for *.ko files")
    _common_tree_args(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="the index file")
    p.set_defaults(func=cmd_index)

    for name, text in (("lookup", "resolve aliases on the running kernel (or a saved /proc/kallsyms): address, "
                                  "module, symbol, livepatch sympos, source"),
                       ("kallsyms", "/proc/kallsyms of the running kernel (or a saved copy) with a line for each "
                                    "alias after its original's")):
        p = command(name, help=text)
        _kernel_args(p, index_required=True)
        if name == "lookup":
            p.add_argument("alias", nargs="+", help="an alias, e.g. name_show@drivers_base_core_c_123")
            p.set_defaults(func=cmd_lookup)
        else:
            p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
            p.set_defaults(func=cmd_kallsyms)

    from kasalias.probe import TOOLS

    p = command("probe", help="how a tracer names aliased copies on the running kernel (or a saved "
                "/proc/kallsyms): one probe per line",
                description="Prints, one per line, the probe that TOOL takes for each alias: kprobe: a "
                "kprobe_events line; bpftrace: a kprobe probe; perf: 'perf probe' arguments; ftrace: the "
                "number set_ftrace_filter takes for that copy (ftrace matches names by the original's, never "
                "an alias); bpftrace-fentry: bpftrace's fentry probe on the copy's BTF FUNC (--return: "
                "fexit). A pattern (name_show@*) stands for every alias it matches. With --index, on a "
                "kernel built without the aliases, the copies are found through the index and named by "
                "address.")
    p.add_argument("--for", dest="tool", required=True, choices=TOOLS, help="the tracer")
    _kernel_args(p, index_required=False)
    p.add_argument("--return", dest="ret", action="store_true", help="the return probe (kretprobe), not the entry")
    p.add_argument("--tracefs", type=Path, help="--for ftrace: where tracefs is mounted (default: "
                   "/sys/kernel/tracing, then /sys/kernel/debug/tracing)")
    p.add_argument("--traceable-functions", type=Path, metavar="FILE",
                   help="--for bpftrace-fentry: also write FILE, available_filter_functions and these copies' "
                   "fentry names, for bpftrace 0.25+'s --traceable-functions FILE (it attaches fentry only to "
                   "functions that list names)")
    p.add_argument("alias", nargs="+", help="an alias, or a shell pattern over aliases, e.g. 'name_show@*'")
    p.set_defaults(func=cmd_probe)

    p = command("module", help="X.ko -> a NEW X.ko.aliased with alias symbols (X.ko is not modified)")
    p.add_argument("--aliases", required=True, help="modules.symalias from 'kasalias analyze'")
    p.add_argument("--symbfreq", type=Path,
                   help="modules.symbfreq: alias a module that was not analysed (built out of tree)")
    p.add_argument("--objcopy", help="write the aliases with this GNU objcopy (e.g. Kbuild's $(OBJCOPY)) "
                   "instead of kasalias' own writer")
    p.add_argument("--btf-base", metavar="VMLINUX",
                   help="the vmlinux (or its raw BTF) the modules' BTF was made on: each aliased function copy "
                   "fentry can attach to gets a BTF FUNC in the module's .BTF and a symbol of that name "
                   "(the alias with '.' for '@')")
    p.add_argument("--srctree", help="source tree of the module (out of tree: its directory's parent)")
    p.add_argument("--objtree", help="build directory")
    p.add_argument("--data", action="store_true", help="alias duplicated data symbols too (out of tree)")
    p.add_argument("--no-text", action="store_true", help="do not alias text symbols (out of tree)")
    p.add_argument("--suffix", help="write INPUT+SUFFIX (e.g. .aliased) for each INPUT: the build's step "
                   "over a group of modules")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="INPUT OUTPUT: the module (not modified) and the new file, usually X.ko.aliased; "
                   "with --suffix, any number of modules")
    p.set_defaults(func=cmd_module)
    p = command("gen", help="render the ninja file and Make fragment of the per-module steps")
    p.add_argument("--objtree", type=Path, required=True, help="the build directory; ninja runs there")
    p.add_argument("--srctree", type=Path, required=True, help="the source tree")
    p.add_argument("--modules-order", default="modules.order", help="relative to objtree (default: %(default)s)")
    p.add_argument("--vmlinux", default="vmlinux.o", help="what the analysis reads (default: %(default)s)")
    p.add_argument("--ninja-file", default="kasalias.ninja", help="relative to objtree (default: %(default)s)")
    p.add_argument("--make-file", help="also write this Make fragment (relative to objtree)")
    p.add_argument("--python", default="python3", help="Python with kasalias installed ($(PYTHON3))")
    p.add_argument("--objcopy", help="module steps write with this objcopy (default: kasalias' own writer)")
    p.add_argument("--btf-base", help="module steps add BTF FUNCs to the modules' BTF, made on this vmlinux "
                   "(relative to objtree; an input of every module step)")
    p.add_argument("--nm", default="nm", help="$(NM)")
    p.add_argument("--syms", help="also write this vmlinux kallsyms list (nm -n vmlinux + aliases)")
    p.add_argument("--analyze-option", action="append", help="pass this option to 'kasalias analyze'")
    p.add_argument("--no-analysis", action="store_true",
                   help="no analysis edge: it runs at vmlinux link (a kernel's link-vmlinux.sh)")
    p.add_argument("--aliases", default="modules.symalias", help="the alias table (default: %(default)s)")
    p.add_argument("--symbfreq", help="modules built out of tree: alias them against this modules.symbfreq")
    p.add_argument("--module-srctree", help="out of tree: alias paths are relative to this directory")
    p.set_defaults(func=cmd_gen)

    p = command("repro-check", help="build a tree twice (-j1, -j2, two directories) with make KAS_ALIAS=1 "
                       "and compare every kasalias output")
    p.add_argument("--tree", "--srctree", dest="tree", type=Path, metavar="DIR",
                   help="the tree to build (default: the sample-tree/ of the source checkout kasalias runs "
                   "from; an installed kasalias has none)")
    p.add_argument("--keep", action="store_true", help="keep the two build directories")
    p.set_defaults(func=cmd_repro_check)

    from kasalias.series import known as known_series

    known = known_series()
    p = command("kbuild", help=f"install or remove the KAS_ALIAS=1 hooks in a kernel tree ({known})",
                       description="install: marked hook blocks in the tree's Kbuild files (and "
                       "scripts/Makefile.kasalias), so that 'make KAS_ALIAS=1' adds the aliases; a tree built "
                       "without KAS_ALIAS=1 builds what it built before. remove: takes every block out, "
                       f"leaving the files byte for byte as they were. Known series: {known}; any point "
                       "release of them. Every file is written by rename.")
    p.add_argument("action", choices=("install", "remove"))
    p.add_argument("ksrc", type=Path, help="the kernel source tree")
    p.add_argument("--series", type=_series, metavar="X.Y",
                   help="hook a tree of another series with the hooks of known series X.Y")
    p.set_defaults(func=cmd_kbuild)
    return parser


def _check_build(command: str) -> None:
    """A command run from a build file made by another kasalias (an upgrade that make or
    ninja did not see, such as files installed with old timestamps) must not mix outputs."""
    from kasalias import buildid

    made_with = os.environ.get(buildid.ENV)
    if made_with and command != "gen" and made_with != buildid.build_id():
        raise KasaliasError(f"the build files were made by another kasalias (build {made_with}, this is "
                            f"{buildid.build_id()}): run make again, or 'make clean' if that does not help")


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that the temporary files of an output being
    written are removed on the way out (make and ninja send it to stop a build)."""


def _terminate(_signum: int, _frame: object) -> NoReturn:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the process itself, not a caller in Python
        signal.signal(signal.SIGTERM, _terminate)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        _setup_logging(args.verbose)
        _check_build(args.command)
        rc = int(args.func(args))
        try:
            sys.stdout.flush()  # a write the kernel refuses (a tracefs file) shows here, not at exit
        except OSError as e:
            raise KasaliasError(f"cannot write the output: {e.strerror}") from None
        return rc
    except KasaliasError as e:
        sys.stderr.write(f"kasalias: error: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"kasalias: error: {e.filename or ''}: {e.strerror}\n")
        return 1
    except KeyboardInterrupt:  # quietly, as a shell does: make reports the interrupted step
        return 130
    except _Terminated:
        return 143
