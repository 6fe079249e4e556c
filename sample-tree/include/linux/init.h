/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sample-tree: initcalls for built-in code.  Each initcall is a pointer in
 * .initcallN.init that init/main.c walks between __initcall_start and
 * __initcall_end (set by scripts/vmlinux.lds).
 */
#ifndef _LINUX_INIT_H
#define _LINUX_INIT_H

typedef int (*initcall_t)(void);

#define __define_initcall(fn, id)					\
	static initcall_t __initcall_##fn##id __used			\
		__section(".initcall" #id ".init") = fn

#define core_initcall(fn)	__define_initcall(fn, 1)
#define subsys_initcall(fn)	__define_initcall(fn, 4)
#define device_initcall(fn)	__define_initcall(fn, 6)

#endif /* _LINUX_INIT_H */
