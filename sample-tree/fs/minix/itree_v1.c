// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: fs/minix/itree_v1.c
 * case 5 (include-C): part of the composite module minix.o; #includes
 * itree_common.c (get_branch, get_block, find_shared, free_branches).
 * Its own static block_to_path has the same name as itree_v2.c's (different
 * file:line); GCC makes it block_to_path.isra.0 (only inode->i_sb is used).
 */
#include "minix.h"

enum {DEPTH = 3, DIRECT = 7};	/* Only double indirect */

typedef u16 block_t;	/* 16 bit, host order */

static inline unsigned long block_to_cpu(block_t n)
{
	return n;
}

static inline block_t *i_data(struct inode *inode)
{
	return (block_t *)inode->u.i1_data;
}

static noinline int block_to_path(struct inode *inode, long block, int offsets[DEPTH])
{
	int n = 0;

	if (block < 0) {
		printk("MINIX-fs: block_to_path: block %ld < 0 on dev %s\n",
		       block, inode->i_sb->s_id);
		return 0;
	}
	if ((u64)block * BLOCK_SIZE >= inode->i_sb->s_maxbytes)
		return 0;

	if (block < 7) {
		offsets[n++] = block;
	} else if ((block -= 7) < 512) {
		offsets[n++] = 7;
		offsets[n++] = block;
	} else {
		block -= 512;
		offsets[n++] = 8;
		offsets[n++] = block >> 9;
		offsets[n++] = block & 511;
	}
	return n;
}

#include "itree_common.c"

int V1_minix_get_block(struct inode *inode, long block,
		       struct buffer_head *bh_result, int create)
{
	return get_block(inode, block, bh_result, create);
}

void V1_minix_truncate(struct inode *inode)
{
	truncate(inode);
}
