// SPDX-License-Identifier: GPL-2.0
/* Counts the hits of each attachment, by its BPF cookie (kcount.c sets cookie i on the
 * i-th function named on its command line). One program for single kprobes, one for
 * kprobe_multi links. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_FUNCS 64

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_FUNCS);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int count(void *ctx)
{
	__u32 key = bpf_get_attach_cookie(ctx);
	__u64 *n = bpf_map_lookup_elem(&hits, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

SEC("kprobe")
int count_kprobe(void *ctx)
{
	return count(ctx);
}

SEC("kprobe.multi")
int count_kprobe_multi(void *ctx)
{
	return count(ctx);
}

char LICENSE[] SEC("license") = "GPL";
