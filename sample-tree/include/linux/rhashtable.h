/* SPDX-License-Identifier: GPL-2.0 */
/* sample-tree: rhashtable parameters; ".hashfn = jhash" is what forces case 4. */
#ifndef _LINUX_RHASHTABLE_H
#define _LINUX_RHASHTABLE_H

#include <linux/types.h>

typedef u32 (*rht_hashfn_t)(const void *data, u32 len, u32 seed);

struct rhashtable_params {
	u16 key_len;
	u16 key_offset;
	rht_hashfn_t hashfn;
};

struct rhashtable {
	const struct rhashtable_params *p;
	unsigned int nelems;
	u32 seed;
};

int rhashtable_init(struct rhashtable *ht, const struct rhashtable_params *params);

#endif /* _LINUX_RHASHTABLE_H */
