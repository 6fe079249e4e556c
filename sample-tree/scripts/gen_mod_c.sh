#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# sample-tree: write the <module>.mod.c boilerplate to stdout, like modpost.
# Usage: gen_mod_c.sh MODNAME HAS_INIT HAS_EXIT INTREE
# (MODNAME with '-' already turned into '_'; the flags are y or n)
set -e
name=$1 has_init=$2 has_exit=$3 intree=$4

cat <<END
#include <linux/module.h>

MODULE_INFO(name, KBUILD_MODNAME);

__visible struct module __this_module
__section(".gnu.linkonce.this_module") = {
	.name = KBUILD_MODNAME,
END
[ "$has_init" = y ] && printf '\t.init = init_module,\n'
[ "$has_exit" = y ] && printf '\t.exit = cleanup_module,\n'
cat <<END
	.arch = MODULE_ARCH_INIT,
};

END
[ "$intree" = y ] && printf 'MODULE_INFO(intree, "Y");\n'
cat <<END
MODULE_INFO(depends, "");
MODULE_INFO(vermagic, VERMAGIC_STRING);
END
