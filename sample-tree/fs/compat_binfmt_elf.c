// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: fs/compat_binfmt_elf.c
 * case 5 (include-C): 32-bit ELF support built by #including binfmt_elf.c
 * with a few macros redefined, exactly like the real kernel file.  This
 * compilation unit therefore emits its own load_elf_binary, elf_core_dump,
 * elf_read and load_elf_binary.cold, all declared in fs/binfmt_elf.c.
 */
#define ELF_CLASS	1	/* ELFCLASS32 */
#define ELF_PHSIZE	32

/* Rename the globals/initcalls so they do not clash with binfmt_elf.c. */
#define elf_format		compat_elf_format
#define init_elf_binfmt		init_compat_elf_binfmt

#include "binfmt_elf.c"
