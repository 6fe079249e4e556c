// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: lib/rhashtable.c
 * The ordinary global rhashtable_init(); its callers pass ".hashfn = jhash",
 * which is what makes each of them emit jhash out of line (case 4).
 */
#include <linux/rhashtable.h>

static u32 rht_seed = 0x9e3779b9;

int rhashtable_init(struct rhashtable *ht, const struct rhashtable_params *params)
{
	u32 key = params->key_offset;

	ht->p = params;
	ht->nelems = 0;
	ht->seed = params->hashfn(&key, sizeof(key), rht_seed++);
	return 0;
}
