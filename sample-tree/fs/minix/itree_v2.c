// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: fs/minix/itree_v2.c
 * case 5 (include-C): part of the composite module minix.o; #includes
 * itree_common.c (get_branch, get_block, find_shared, free_branches).
 * Its own static block_to_path has the same name as itree_v1.c's (different
 * file:line); GCC makes it block_to_path.isra.0 (only inode->i_sb is used).
 */
#include "minix.h"

enum {DIRECT = 7, DEPTH = 4};	/* Have triple indirect */

typedef u32 block_t;	/* 32 bit, host order */

static inline unsigned long block_to_cpu(block_t n)
{
	return n;
}

static inline block_t *i_data(struct inode *inode)
{
	return (block_t *)inode->u.i2_data;
}

#define DIRCOUNT 7
#define INDIRCOUNT(sb) (1 << ((sb)->s_version == 3 ? 8 : 10))

static noinline int block_to_path(struct inode *inode, long block, int offsets[DEPTH])
{
	int n = 0;
	struct super_block *sb = inode->i_sb;

	if (block < 0) {
		printk("MINIX-fs: block_to_path: block %ld < 0 on dev %s\n",
		       block, sb->s_id);
		return 0;
	}
	if ((u64)block * (u64)BLOCK_SIZE >= sb->s_maxbytes)
		return 0;

	if (block < DIRCOUNT) {
		offsets[n++] = block;
	} else if ((block -= DIRCOUNT) < INDIRCOUNT(sb)) {
		offsets[n++] = DIRCOUNT;
		offsets[n++] = block;
	} else if ((block -= INDIRCOUNT(sb)) < INDIRCOUNT(sb) * INDIRCOUNT(sb)) {
		offsets[n++] = DIRCOUNT + 1;
		offsets[n++] = block / INDIRCOUNT(sb);
		offsets[n++] = block % INDIRCOUNT(sb);
	} else {
		block -= INDIRCOUNT(sb) * INDIRCOUNT(sb);
		offsets[n++] = DIRCOUNT + 2;
		offsets[n++] = (block / INDIRCOUNT(sb)) / INDIRCOUNT(sb);
		offsets[n++] = (block / INDIRCOUNT(sb)) % INDIRCOUNT(sb);
		offsets[n++] = block % INDIRCOUNT(sb);
	}
	return n;
}

#include "itree_common.c"

int V2_minix_get_block(struct inode *inode, long block,
		       struct buffer_head *bh_result, int create)
{
	return get_block(inode, block, bh_result, create);
}

void V2_minix_truncate(struct inode *inode)
{
	truncate(inode);
}
