#!/bin/bash
# init of the tracer guest (tests/test_tracers.py): Debian's bpftrace, perf and libbpf on a
# kernel built with 'make KAS_ALIAS=first' (each alias the name ftrace gives its copy), booted
# from a root disk with init=/kasalias/test.sh. Probes two copies of type_show (vmlinux), of
# minix's get_block (one module) and of the kobject samples' foo_show (two modules) by alias
# with each tool, the way 'kasalias probe --for TOOL' prints it, and with the tools' own
# wildcards; runs work.sh (which calls the copies a known number of times) and prints the
# hits per copy; then what each tool does with the bare duplicated name, and what the names
# the kernel prints look like (the trade-off of alias-first, NOTES.md "Placement").
# fentry/fexit (bpftrace, libbpf) on one copy through the BTF FUNC kasalias adds for it, in
# vmlinux's BTF and in a module's.
# Last, a livepatch replaces the net-sysfs copy named by its alias.
# Every line the host parses starts with E2E; the last is KASALIAS-E2E-END rc=0.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PYTHONDONTWRITEBYTECODE=1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
ln -s /proc/self/fd /dev/fd
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t tracefs nodev /sys/kernel/tracing
mount -t debugfs nodev /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
echo 0 >/proc/sys/kernel/kptr_restrict
T=/sys/kernel/tracing K=/kasalias
cd /tmp

out() { sed "s/^/$1 /"; }  # prefix every line of stdin
version() { echo "E2E-VERSION $1 $(eval "$2" 2>&1 | head -n1)"; }
version kernel 'uname -r'
version bpftrace 'bpftrace --version'
version perf 'perf version'
version libbpf 'dpkg-query -W -f "\${Version}" libbpf1'

modprobe loop && modprobe minix && modprobe kobject-example && modprobe kset-example || echo "E2E-ERROR modprobe"
dd if=/dev/zero of=/tmp/minix1.img bs=1k count=1024 2>/dev/null
mkfs.minix -1 /tmp/minix1.img >/dev/null
mount -t minix -o loop /tmp/minix1.img /mnt && seq 1 20000 >/mnt/file && umount /mnt || echo "E2E-ERROR minix"

pick() { awk -v re="$1" -v mod="$2" '$3 ~ re && ($4 == mod || (mod == "" && NF == 3)) { print $3; exit }' /proc/kallsyms; }
NET=$(pick '^type_show@net_core_net_sysfs_c_[0-9]+$' '')
PERFT=$(pick '^type_show@kernel_events_core_c_[0-9]+$' '')
V1=$(pick '^get_block@.*itree_v1_c$' '[minix]')
V2=$(pick '^get_block@.*itree_v2_c$' '[minix]')
KOBJ=$(pick '^foo_show@samples_kobject_kobject_example_c_[0-9]+$' '[kobject_example]')
KSET=$(pick '^foo_show@samples_kobject_kset_example_c_[0-9]+$' '[kset_example]')
ALL="$NET $PERFT $V1 $V2 $KOBJ $KSET"
for a in $ALL; do echo "E2E-TARGET $a"; done

# --- tracefs kprobe_events ----------------------------------------------------------
{ kasalias probe --for kprobe $ALL; kasalias probe --for kprobe --return $ALL; } >/tmp/kprobes
out E2E-SPEC-kprobe </tmp/kprobes
cat /tmp/kprobes >>$T/kprobe_events || echo "E2E-ERROR kprobe_events"
echo 1 >$T/events/kasalias/enable
$K/work.sh
echo 0 >$T/events/kasalias/enable
awk '{ print "E2E-HITS-EVENT kprobe", $1, $2 }' $T/kprobe_profile
echo >$T/kprobe_events
echo "p:kasalias/bare type_show" >>$T/kprobe_events 2>/dev/null; echo "E2E-BARE kprobe rc=$? $(grep 'error:' $T/error_log | tail -n1)"
echo >$T/kprobe_events

# --- bpftrace ----------------------------------------------------------------------
bpftrace_script() {  # the probes 'kasalias probe' prints for $ALL, counting into @h0, @h1...
	local i=0
	kasalias probe --for bpftrace "$@" $ALL | while read -r probe; do echo "$probe { @h$i = count(); }"; i=$((i + 1)); done
}
bpftrace_script >/tmp/bt
bpftrace_script --return >/tmp/btr
out E2E-SPEC-bpftrace </tmp/bt
out E2E-SPEC-bpftrace </tmp/btr
# -c wants one ELF file: /usr/bin/true, not true (/bin is /usr/bin: two matches on PATH)
WORK="/usr/bin/dash $K/work.sh"
bpftrace /tmp/bt -c "$WORK" >/tmp/bt.out 2>&1; echo "E2E-RC bpftrace $?"
out E2E-BPFTRACE </tmp/bt.out
bpftrace /tmp/btr -c "$WORK" >/tmp/btr.out 2>&1; echo "E2E-RC bpftrace-kretprobe $?"
out E2E-BPFTRACE-RET </tmp/btr.out
bpftrace -e 'kprobe:type_show { @ = count(); }' -c /usr/bin/true 2>&1 | head -n 3 | out "E2E-BARE bpftrace"
bpftrace -e 'kprobe:"type_show@*" { @ = count(); }' -c /usr/bin/true 2>&1 | head -n 3 | out "E2E-WILDCARD bpftrace"
bpftrace -e "kprobe:minix:\"$V1\" { @ = count(); }" -c /usr/bin/true 2>&1 | head -n 3 | out "E2E-MODULE bpftrace"
# bpftrace's wildcards come from available_filter_functions (no aliases there): kasalias
# expands the pattern into one probe per alias. (Not with bpftrace's 'probe' builtin as a map
# key: 0.17 then matches each name against available_filter_functions and attaches nothing.)
kasalias probe --for bpftrace 'type_show@*' | awk '{ print $0 " { @h" NR - 1 " = count(); }" }' >/tmp/btw
out E2E-SPEC-bpftrace-wildcard </tmp/btw
bpftrace /tmp/btw -c "$WORK" 2>&1 | grep -v '^$' | out E2E-BPFTRACE-WILDCARD

# --- perf probe + perf record ------------------------------------------------------
kasalias probe --for perf $ALL >/tmp/perf.specs; out E2E-SPEC-perf </tmp/perf.specs
while read -r spec; do perf probe $spec 2>&1 | out "E2E-PERF-PROBE"; done </tmp/perf.specs
perf probe -l 2>&1 | out E2E-PERF-LIST
perf record -q -o /tmp/perf.data -e 'probe:*' -a -- $K/work.sh >/dev/null 2>/tmp/perf.err; echo "E2E-RC perf $?"
out E2E-PERF-ERR </tmp/perf.err
perf script -i /tmp/perf.data -F event 2>/dev/null | sort | uniq -c | out E2E-PERF-SCRIPT
perf probe -q -d 'probe:*' >/dev/null 2>&1
perf probe -a type_show 2>&1 | grep -v '^$' | out "E2E-BARE perf"
perf probe -q -d 'probe:*' >/dev/null 2>&1
# where perf probe finds DWARF for the image it refuses aliases: kprobe_events lines instead
kasalias probe --for kprobe $ALL >>$T/kprobe_events
perf record -q -o /tmp/perf.data -e 'kasalias:*' -a -- $K/work.sh >/dev/null 2>&1; echo "E2E-RC perf-kprobe-events $?"
perf script -i /tmp/perf.data -F event 2>/dev/null | sort | uniq -c | out E2E-PERF-EVENTS-SCRIPT
echo >$T/kprobe_events

# --- libbpf: bpf_program__attach_kprobe_opts and _attach_kprobe_multi_opts ---------
$K/kcount single $K/kcount.bpf.o $ALL -- $K/work.sh | out E2E-LIBBPF-single
$K/kcount multi $K/kcount.bpf.o $ALL -- $K/work.sh | out E2E-LIBBPF-multi
$K/kcount single $K/kcount.bpf.o type_show -- $K/work.sh | out "E2E-BARE libbpf-single"
$K/kcount multi $K/kcount.bpf.o type_show -- $K/work.sh | out "E2E-BARE libbpf-multi"

# --- ftrace: set_ftrace_filter by the number 'kasalias probe --for ftrace' prints ----------
kasalias probe --for ftrace $ALL >/tmp/ftrace.idx
echo $ALL | tr ' ' '\n' | paste -d' ' - /tmp/ftrace.idx >/tmp/ftrace.spec
out E2E-SPEC-ftrace </tmp/ftrace.spec
for tracer in function function_graph; do
	while read -r alias n; do
		echo "$n" >$T/set_ftrace_filter
		echo "$tracer" >$T/current_tracer
		echo >$T/trace
		$K/work.sh
		echo 0 >$T/tracing_on  # before the tracer changes, which empties the buffer
		hits=$(grep -v '^#' $T/trace | grep -cF "$alias")
		echo nop >$T/current_tracer
		echo 1 >$T/tracing_on
		echo "E2E-HITS ftrace-$tracer $alias $hits $(cat $T/set_ftrace_filter | tr '\n' ' ')"
	done </tmp/ftrace.spec
done
# set_graph_function by alias, with function_graph: the copy and what it calls
echo >$T/set_ftrace_filter
for alias in $ALL; do
	echo "$alias" >$T/set_graph_function
	echo function_graph >$T/current_tracer
	echo >$T/trace
	$K/work.sh
	echo 0 >$T/tracing_on
	hits=$(grep -v '^#' $T/trace | grep -cF "$alias")  # "NAME() {", "NAME();" or "NAME [MOD]() {"
	echo nop >$T/current_tracer
	echo 1 >$T/tracing_on
	echo "E2E-HITS ftrace-graph-function $alias $hits $(cat $T/set_graph_function | tr '\n' ' ')"
done
echo >$T/set_graph_function
echo >$T/set_ftrace_filter
echo type_show >$T/set_ftrace_filter 2>/dev/null; echo "E2E-BARE ftrace-filter rc=$? $(grep -c . $T/set_ftrace_filter)"
echo >$T/set_ftrace_filter
echo 'type_show*' >$T/set_ftrace_filter 2>/dev/null; echo "E2E-BARE ftrace-glob rc=$? $(cat $T/set_ftrace_filter | tr '\n' ' ')"
echo >$T/set_ftrace_filter
echo type_show >$T/set_graph_function 2>/dev/null; echo "E2E-BARE ftrace-graph rc=$? $(grep -c . $T/set_graph_function)"
echo >$T/set_graph_function

# --- what ftrace lists: available_filter_functions names each copy by its alias
echo "E2E-AFF aliases=$(grep -c @ $T/available_filter_functions) net=$(grep -cxF "$NET" $T/available_filter_functions) kobj=$(grep -cxF "$KOBJ [kobject_example]" $T/available_filter_functions) bare=$(grep -cx type_show $T/available_filter_functions)"

# --- fprobe dynamic events by alias ('kasalias probe --for fprobe')
kasalias probe --for fprobe $ALL >/tmp/fprobes 2>&1; out E2E-SPEC-fprobe </tmp/fprobes
if cat /tmp/fprobes >>$T/dynamic_events; then
	echo 1 >$T/events/kasalias_fprobe/enable
	echo >$T/trace
	$K/work.sh
	echo 0 >$T/events/kasalias_fprobe/enable
	while read -r spec alias; do
		ev=${spec#f:kasalias_fprobe/}
		echo "E2E-HITS fprobe $alias $(grep -c " $ev: " $T/trace)"
	done </tmp/fprobes
	grep -m1 -F "$NET" $T/trace | out E2E-TRADE-event-line
else
	echo "E2E-ERROR fprobe"
fi
: >$T/dynamic_events
echo "f:kasalias_fprobe/bare type_show" >>$T/dynamic_events 2>/dev/null; echo "E2E-BARE fprobe rc=$? $(grep 'error:' $T/error_log | tail -n1)"
: >$T/dynamic_events

# --- the tools' own wildcards over aliases: bpftrace, libbpf's kprobe_multi glob
bpftrace -e "kprobe:\"${NET%_*}_*\" { @ = count(); }" -c "$WORK" 2>&1 | grep -v '^$' | out E2E-OWN-WILDCARD-bpftrace-net
bpftrace -e 'kprobe:"foo_show@*" { @ = count(); }' -c "$WORK" 2>&1 | grep -v '^$' | out E2E-OWN-WILDCARD-bpftrace-foo
$K/kcount glob $K/kcount.bpf.o "${NET%_*}_*" -- $K/work.sh | out E2E-LIBBPF-glob-net
$K/kcount glob $K/kcount.bpf.o 'foo_show@*' -- $K/work.sh | out E2E-LIBBPF-glob-foo

# --- the trade-off: what the kernel prints where a copy is named, and the bare name
grep -n -e " type_show$" -e " $NET$" -e " $PERFT$" /proc/kallsyms | out E2E-TRADE-kallsyms
echo "p:kasalias/emit sysfs_emit" >>$T/kprobe_events
echo stacktrace >$T/events/kasalias/emit/trigger
echo >$T/trace
echo 1 >$T/events/kasalias/emit/enable
cat /sys/kernel/kobject_example/foo >/dev/null  # foo_show calls sysfs_emit: its frame is on the stack
echo 0 >$T/events/kasalias/emit/enable
grep -A12 -m1 '<stack trace>' $T/trace | out E2E-TRADE-stack
echo '!stacktrace' >$T/events/kasalias/emit/trigger
echo >$T/kprobe_events
kasalias probe --for kprobe "$NET" >>$T/kprobe_events
perf record -q -o /tmp/perf-trade.data -e 'kasalias:*' -a -- cat /sys/class/net/lo/type >/dev/null 2>&1
perf script -i /tmp/perf-trade.data -F ip,sym 2>&1 | head -n 2 | out E2E-TRADE-perf-script
perf report -i /tmp/perf-trade.data --stdio --sort sym 2>&1 | grep -v '^#' | grep -v '^$' | head -n 3 | out E2E-TRADE-perf-report
echo >$T/kprobe_events
bpftrace -e 'fentry:type_show { @ = count(); }' -c "$WORK" 2>&1 | grep -e Attaching -e '^@' -e ERROR | out E2E-TRADE-fentry-bare
echo "E2E-TRADE-btf $(bpftool btf dump file /sys/kernel/btf/vmlinux 2>&1 | grep -c "FUNC 'type_show'") FUNC type_show in vmlinux BTF"

# --- fentry/fexit on one copy: vmlinux's BTF has a FUNC per aliased copy, named as its alias
# with '.' for '@', which kallsyms lists at the copy too ('kasalias probe --for bpftrace-fentry')
bpftool btf dump file /sys/kernel/btf/vmlinux 2>&1 | grep -F -e "FUNC '${NET//@/.}'" -e "FUNC '${PERFT//@/.}'" | out E2E-FENTRY-BTF
grep -e " $NET$" -e " ${NET//@/.}$" /proc/kallsyms | out E2E-FENTRY-KALLSYMS
dmesg | grep -i -e 'btf.*invalid' -e 'btf.*malformed' -e 'failed.*btf' | out E2E-FENTRY-DMESG
# a module's split BTF has its copies' FUNCs too (the module step adds them)
bpftool btf dump file /sys/kernel/btf/minix 2>&1 | grep -F -e "FUNC '${V1//@/.}'" -e "FUNC '${V2//@/.}'" |
	out E2E-FENTRY-BTF-MODULE
bpftool btf dump file /sys/kernel/btf/kobject_example 2>&1 | grep -F "FUNC '${KOBJ//@/.}'" | out E2E-FENTRY-BTF-MODULE
kasalias probe --for bpftrace-fentry --traceable-functions /tmp/traceable "$NET" "$PERFT" "$KOBJ" "$V1" "$V2" \
	>/tmp/fentry.specs 2>&1
kasalias probe --for bpftrace-fentry --return "$NET" "$KOBJ" >>/tmp/fentry.specs 2>&1
out E2E-SPEC-bpftrace-fentry </tmp/fentry.specs
{ read -r FNET; read -r FPERF; read -r FKOBJ; read -r FV1; read -r FV2; read -r FXNET; read -r FXKOBJ; } </tmp/fentry.specs
A=args.
case "$(bpftrace --version)" in  # 0.17: kfunc/kretfunc and args->
*v0.17*) A='args->' FNET=kfunc:${FNET#fentry:} FPERF=kfunc:${FPERF#fentry:} FXNET=kretfunc:${FXNET#fexit:}
	FKOBJ=kfunc:${FKOBJ#fentry:} FV1=kfunc:${FV1#fentry:} FV2=kfunc:${FV2#fentry:} FXKOBJ=kretfunc:${FXKOBJ#fexit:} ;;
esac
# what bpftrace does with the FUNC's name alone (0.25+ check it against available_filter_functions)
bpftrace -e "$FNET { @ = count(); }" -c /usr/bin/true 2>&1 | grep -v '^$' | head -n 3 | out E2E-FENTRY-NOLIST
TF=
if bpftrace --help 2>&1 | grep -q -e --traceable-functions; then TF="--traceable-functions /tmp/traceable"; fi
echo "E2E-FENTRY-TRACEABLE ${TF:-none}"
bpftrace $TF -e "$FNET { @net = count(); } $FXNET { @netret = count(); } $FPERF { @perf = count(); }" \
	-c "$WORK" 2>&1 | grep -v '^$' | out E2E-BPFTRACE-FENTRY
# typed args of that copy: 0.17 to 0.24 resolve args only for functions ftrace lists by that name
bpftrace $TF -e "$FNET { @args[str(${A}dev->kobj.name)] = count(); }" -c "$WORK" 2>&1 | grep -v '^$' | head -n 5 |
	out E2E-BPFTRACE-FENTRY-ARGS
# module copies: kobject-example's foo_show (2 calls), minix's V1 get_block (a file read) and V2 (none)
bpftrace $TF -e "$FKOBJ { @kobj = count(); } $FXKOBJ { @kobjret = count(); } $FV1 { @v1 = count(); } $FV2 { @v2 = count(); }" \
	-c "$WORK" 2>&1 | grep -v '^$' | out E2E-BPFTRACE-FENTRY-MODULE
bpftrace $TF -e "$FKOBJ { @args[str(${A}attr->attr.name)] = count(); }" -c "$WORK" 2>&1 | grep -v '^$' | head -n 5 |
	out E2E-BPFTRACE-FENTRY-MODULE-ARGS
$K/kfentry $K/kfentry.bpf.o -- $K/work.sh 2>&1 | out E2E-LIBBPF-fentry

# --- a kernel without aliases: 'kasalias probe --index' (the index of the unaliased build, as
# 'kasalias index' makes it of a distribution's debug package) names the copies by address
kasalias probe --index $K/kernel.index --for kprobe $ALL >/tmp/kprobes.idx 2>&1; out E2E-SPEC-kprobe-index </tmp/kprobes.idx
cat /tmp/kprobes.idx >>$T/kprobe_events && echo 1 >$T/events/kasalias/enable
$K/work.sh
echo 0 >$T/events/kasalias/enable
awk '{ print "E2E-HITS-EVENT kprobe-index", $1, $2 }' $T/kprobe_profile
echo >$T/kprobe_events
bpftrace_script --index $K/kernel.index >/tmp/bti
out E2E-SPEC-bpftrace-index </tmp/bti
# an address is not a name ftrace lists: bpftrace 0.27 takes it only with --unsafe ("Probing by
# address requires --unsafe"), what 'kasalias probe' says on stderr; 0.17 and 0.23 take the flag too
bpftrace --unsafe /tmp/bti -c "$WORK" 2>&1 | out E2E-BPFTRACE-INDEX

# --- the README's "Tracing with aliases" lines, as written (tests/test_tracers.py copies them)
bash -e -x $K/readme.sh >/tmp/readme.out 2>&1; echo "E2E-README rc=$?"
out E2E-README-OUT </tmp/readme.out

# --- livepatch: old_name = the alias (tests/e2e/tracers/klp) ---------------------------------
insmod $K/kasalias_klp.ko target=type_show 2>/dev/null; echo "E2E-KLP-BARE rc=$? $(dmesg | grep 'livepatch:' | tail -n1)"
# Not waiting for the transition to end: without a reliable unwinder (this kernel has
# UNWINDER_GUESS) sleeping kernel threads never switch; this shell switches when insmod returns
# to it, and the cat processes it starts are patched from their start.
if insmod $K/kasalias_klp.ko target="$NET"; then
	echo "E2E-KLP loaded $(dmesg | grep 'livepatch:' | tail -n1)"
fi
echo "E2E-KLP net=$(cat /sys/class/net/lo/type) perf=$(cat /sys/bus/event_source/devices/software/type)"
echo "KASALIAS-E2E-END rc=0"
