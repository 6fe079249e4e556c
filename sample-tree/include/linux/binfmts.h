/* SPDX-License-Identifier: GPL-2.0 */
/* sample-tree: binary formats (case 5: fs/binfmt_elf.c, fs/compat_binfmt_elf.c). */
#ifndef _LINUX_BINFMTS_H
#define _LINUX_BINFMTS_H

#include <linux/types.h>

struct module;

struct linux_binprm {
	const char *filename;
	const u8 *buf;
	unsigned long p;
	unsigned long size;
	int argc, envc;
};

struct coredump_params {
	long signr;
	unsigned long limit;
	unsigned long written;
	u8 *out;
};

struct linux_binfmt {
	struct linux_binfmt *next;
	struct module *module;
	int (*load_binary)(struct linux_binprm *);
	int (*core_dump)(struct coredump_params *cprm);
	unsigned long min_coredump;
};

void register_binfmt(struct linux_binfmt *fmt);
int kernel_read(const char *name, void *buf, size_t count, loff_t *pos);
int dump_emit(struct coredump_params *cprm, const void *addr, int nr);

#endif /* _LINUX_BINFMTS_H */
