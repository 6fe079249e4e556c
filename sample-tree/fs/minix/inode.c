// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: fs/minix/inode.c
 * case 5: the first part of the composite module minix.o
 * (minix-objs := inode.o itree_v1.o itree_v2.o); dispatches to the V1/V2
 * block mapping code that itree_v1.c and itree_v2.c build from
 * itree_common.c.  Its own symbols are unique.
 */
#include <linux/module.h>
#include "minix.h"

static int minix_get_block(struct inode *inode, long block,
			   struct buffer_head *bh_result, int create)
{
	if (inode->i_sb->s_version == 1)
		return V1_minix_get_block(inode, block, bh_result, create);
	return V2_minix_get_block(inode, block, bh_result, create);
}

static void minix_truncate(struct inode *inode)
{
	if (inode->i_sb->s_version == 1)
		V1_minix_truncate(inode);
	else
		V2_minix_truncate(inode);
}

static struct file_system_type minix_fs_type = {
	.name		= "minix",
	.get_block	= minix_get_block,
	.truncate	= minix_truncate,
};

static int __init init_minix_fs(void)
{
	return register_filesystem(&minix_fs_type);
}

static void __exit exit_minix_fs(void)
{
	unregister_filesystem(&minix_fs_type);
}

module_init(init_minix_fs);
module_exit(exit_minix_fs);
MODULE_DESCRIPTION("Minix file system");
MODULE_LICENSE("GPL");
