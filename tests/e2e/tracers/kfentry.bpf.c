// SPDX-License-Identifier: GPL-2.0
/* fentry/fexit on one copy of a duplicated static, as a libbpf tool author writes it:
 * SEC("fentry/NAME") with NAME the copy's BTF FUNC (kasalias' alias with '.' for '@'), in
 * vmlinux's BTF or a module's (libbpf looks in each). tests/test_tracers.py builds it with
 * -DNET= and -DPERF= the BTF names of net-sysfs's and perf's type_show, -DKOBJ= of
 * kobject-example's foo_show and -DV1= of minix's V1 get_block; kfentry.c prints the hits of
 * each program (map key, in this order). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#if !defined(NET) || !defined(PERF) || !defined(KOBJ) || !defined(V1)
#error "build with -DNET='\"type_show.net_core_net_sysfs_c_N\"' -DPERF=... -DKOBJ=... -DV1=..."
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int count(__u32 key)
{
	__u64 *n = bpf_map_lookup_elem(&hits, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/* one program per target, counting into hits[key] */
#define COUNTER(section, name, key) \
	SEC(section) int name(unsigned long long *ctx) { return count(key); }

COUNTER("fentry/" NET, net_fentry, 0)
COUNTER("fexit/" NET, net_fexit, 1)
COUNTER("fentry/" PERF, perf_fentry, 2)
COUNTER("fentry/" KOBJ, kobj_fentry, 3)
COUNTER("fexit/" V1, v1_fexit, 4)

char LICENSE[] SEC("license") = "GPL";
