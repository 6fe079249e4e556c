// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: fs/exec.c
 * Ordinary global functions (register_binfmt, kernel_read, dump_emit) used
 * by fs/binfmt_elf.c and fs/compat_binfmt_elf.c.  Nothing duplicated.
 */
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/binfmts.h>

static struct linux_binfmt *formats;

void register_binfmt(struct linux_binfmt *fmt)
{
	fmt->next = formats;
	formats = fmt;
}

int kernel_read(const char *name, void *buf, size_t count, loff_t *pos)
{
	memset(buf, 0, count);
	*pos += count;
	return name ? (int)count : -1;
}

int dump_emit(struct coredump_params *cprm, const void *addr, int nr)
{
	if (cprm->written + nr > cprm->limit)
		return 0;
	memcpy(cprm->out + cprm->written, addr, nr);
	cprm->written += nr;
	return 1;
}
