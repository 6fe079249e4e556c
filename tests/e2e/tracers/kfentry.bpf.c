// SPDX-License-Identifier: GPL-2.0
/* fentry/fexit on one copy of a duplicated static, as a libbpf tool author writes it:
 * SEC("fentry/NAME") with NAME the copy's BTF FUNC (kasalias' alias with '.' for '@').
 * tests/test_tracers.py builds it with -DNET= and -DPERF= the BTF names of net-sysfs's and
 * perf's type_show; kfentry.c prints the hits of each program (map key, in this order). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef NET
#error "build with -DNET='\"type_show.net_core_net_sysfs_c_N\"' -DPERF='\"type_show.kernel_events_core_c_N\"'"
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
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

SEC("fentry/" NET)
int net_fentry(unsigned long long *ctx)
{
	return count(0);
}

SEC("fexit/" NET)
int net_fexit(unsigned long long *ctx)
{
	return count(1);
}

SEC("fentry/" PERF)
int perf_fentry(unsigned long long *ctx)
{
	return count(2);
}

char LICENSE[] SEC("license") = "GPL";
