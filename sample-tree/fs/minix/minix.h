/* SPDX-License-Identifier: GPL-2.0 */
/* sample-tree: fs/minix/minix.h - the bits of VFS the minix module needs. */
#ifndef FS_MINIX_H
#define FS_MINIX_H

#include <linux/kernel.h>

#define BLOCK_SIZE 1024

struct super_block {
	unsigned long s_maxbytes;
	int s_version;
	const char *s_id;
};

struct inode {
	struct super_block *i_sb;
	unsigned long i_size;
	unsigned long i_blocks;
	union {
		u16 i1_data[16];
		u32 i2_data[16];
	} u;
};

struct buffer_head {
	char *b_data;
	unsigned long b_blocknr;
	unsigned int b_size;
	int b_dirty;
};

struct file_system_type {
	const char *name;
	int (*get_block)(struct inode *inode, long block,
			 struct buffer_head *bh_result, int create);
	void (*truncate)(struct inode *inode);
};

struct buffer_head *sb_bread(struct super_block *sb, unsigned long block);
void brelse(struct buffer_head *bh);
void mark_buffer_dirty(struct buffer_head *bh);
void map_bh(struct buffer_head *bh, struct super_block *sb, unsigned long block);
int register_filesystem(struct file_system_type *fs);
int unregister_filesystem(struct file_system_type *fs);

int V1_minix_get_block(struct inode *inode, long block,
		       struct buffer_head *bh_result, int create);
int V2_minix_get_block(struct inode *inode, long block,
		       struct buffer_head *bh_result, int create);
void V1_minix_truncate(struct inode *inode);
void V2_minix_truncate(struct inode *inode);

#endif /* FS_MINIX_H */
