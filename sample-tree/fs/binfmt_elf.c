// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: fs/binfmt_elf.c
 * case 5 (include-C): fs/compat_binfmt_elf.c #includes this file, so vmlinux
 * gets two copies of the statics load_elf_binary, elf_core_dump and elf_read,
 * both declared here (same file:line), emitted by two compilation units.
 * case 6: load_elf_binary.cold (the WARN_ON path) exists in both copies too.
 * The prototypes below come before the definitions, as in the real file:
 * DW_AT_decl_line is the definition's line.
 */
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/binfmts.h>
#include <linux/init.h>

#ifndef ELF_CLASS
#define ELF_CLASS	2	/* ELFCLASS64 */
#define ELF_PHSIZE	56
#endif

static int load_elf_binary(struct linux_binprm *bprm);
static int elf_core_dump(struct coredump_params *cprm);

static struct linux_binfmt elf_format = {
	.load_binary	= load_elf_binary,
	.core_dump	= elf_core_dump,
	.min_coredump	= 4096,
};

static noinline int elf_read(const char *name, void *buf, size_t len, loff_t pos)
{
	int rv = kernel_read(name, buf, len, &pos);

	if (rv != (int)len)
		return rv < 0 ? rv : -5;
	return 0;
}

static int load_elf_binary(struct linux_binprm *bprm)
{
	u8 phdrs[4 * ELF_PHSIZE];
	unsigned int i, sum = 0;
	int retval;

	if (memcmp(bprm->buf, "\177ELF", 4) != 0)
		return -8;
	if (WARN_ON(bprm->buf[4] != ELF_CLASS)) {
		pr_err("%s: %s: bad class %u\n", __func__, bprm->filename,
		       bprm->buf[4]);
		bprm->p = 0;
		return -8;
	}
	retval = elf_read(bprm->filename, phdrs, sizeof(phdrs), 64);
	if (retval)
		return retval;
	for (i = 0; i < sizeof(phdrs); i++)
		sum += phdrs[i];
	bprm->p = sum;
	return 0;
}

static int elf_core_dump(struct coredump_params *cprm)
{
	u8 ehdr[64];

	memset(ehdr, 0, sizeof(ehdr));
	memcpy(ehdr, "\177ELF", 4);
	ehdr[4] = ELF_CLASS;
	if (!dump_emit(cprm, ehdr, sizeof(ehdr)))
		return 0;
	return elf_read("core", cprm->out, cprm->written, 0) == 0;
}

static int __init init_elf_binfmt(void)
{
	register_binfmt(&elf_format);
	return 0;
}
core_initcall(init_elf_binfmt);
