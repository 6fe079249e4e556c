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

SEC("fentry/" KOBJ)
int kobj_fentry(unsigned long long *ctx)
{
	return count(3);
}

SEC("fexit/" V1)
int v1_fexit(unsigned long long *ctx)
{
	return count(4);
}

char LICENSE[] SEC("license") = "GPL";
