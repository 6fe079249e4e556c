// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: fs/minix/itree_common.c
 * case 5 (include-C): not compiled on its own; itree_v1.c and itree_v2.c
 * both #include it after defining block_t, DEPTH and block_to_path().
 * So the minix module has two copies each of the statics get_branch,
 * get_block, find_shared and free_branches, all declared in this file.
 */

typedef struct {
	block_t	*p;
	block_t	key;
	struct buffer_head *bh;
} Indirect;

static inline void add_chain(Indirect *p, struct buffer_head *bh, block_t *v)
{
	p->key = *(p->p = v);
	p->bh = bh;
}

static inline block_t *block_end(struct buffer_head *bh)
{
	return (block_t *)((char *)bh->b_data + BLOCK_SIZE);
}

static noinline Indirect *get_branch(struct inode *inode, int depth,
				     int *offsets, Indirect chain[DEPTH],
				     int *err)
{
	struct super_block *sb = inode->i_sb;
	Indirect *p = chain;
	struct buffer_head *bh;

	*err = 0;
	add_chain(chain, NULL, i_data(inode) + *offsets);
	if (!p->key)
		goto no_block;
	while (--depth) {
		bh = sb_bread(sb, block_to_cpu(p->key));
		if (!bh)
			goto failure;
		add_chain(++p, bh, (block_t *)bh->b_data + *++offsets);
		if (!p->key)
			goto no_block;
	}
	return NULL;

failure:
	*err = -5;
no_block:
	return p;
}

static noinline int get_block(struct inode *inode, long block,
			      struct buffer_head *bh, int create)
{
	int err = -5;
	int offsets[DEPTH];
	Indirect chain[DEPTH];
	Indirect *partial;
	int depth = block_to_path(inode, block, offsets);

	if (depth == 0)
		goto out;

	partial = get_branch(inode, depth, offsets, chain, &err);
	if (!partial) {
		map_bh(bh, inode->i_sb, block_to_cpu(chain[depth - 1].key));
		partial = chain + depth - 1;
		err = 0;
		goto cleanup;
	}
	if (!create || err == -5)
		goto cleanup;
	err = -28;
	partial = get_branch(inode, depth, offsets, chain, &err);
cleanup:
	while (partial > chain) {
		brelse(partial->bh);
		partial--;
	}
out:
	return err;
}

static noinline Indirect *find_shared(struct inode *inode, int depth,
				      int offsets[DEPTH], Indirect chain[DEPTH],
				      block_t *top)
{
	Indirect *partial, *p;
	int k, err;

	*top = 0;
	for (k = depth; k > 1 && !offsets[k - 1]; k--)
		;
	partial = get_branch(inode, k, offsets, chain, &err);
	if (!partial)
		partial = chain + k - 1;
	for (p = partial; p > chain && !p->key; p--)
		;
	if (p == chain + k - 1 && p > chain) {
		p->p--;
	} else {
		*top = *p->p;
		*p->p = 0;
	}
	while (partial > p) {
		brelse(partial->bh);
		partial--;
	}
	return partial;
}

static void free_branches(struct inode *inode, block_t *p, block_t *q, int depth)
{
	struct buffer_head *bh;
	unsigned long nr;

	if (depth--) {
		for ( ; p < q ; p++) {
			nr = block_to_cpu(*p);
			if (!nr)
				continue;
			*p = 0;
			bh = sb_bread(inode->i_sb, nr);
			if (!bh)
				continue;
			free_branches(inode, (block_t *)bh->b_data,
				      block_end(bh), depth);
			brelse(bh);
		}
	} else {
		for ( ; p < q ; p++)
			*p = 0;
	}
}

static inline void truncate(struct inode *inode)
{
	block_t *idata = i_data(inode);
	int offsets[DEPTH];
	Indirect chain[DEPTH];
	block_t nr = 0;
	int n;

	n = block_to_path(inode, inode->i_size / BLOCK_SIZE, offsets);
	if (!n)
		return;
	find_shared(inode, n, offsets, chain, &nr);
	free_branches(inode, idata + offsets[0] + 1, idata + DIRECT, 0);
	if (nr)
		free_branches(inode, &nr, &nr + 1, n - 1);
}
