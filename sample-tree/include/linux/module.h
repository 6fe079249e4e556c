/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sample-tree: module boilerplate.  With -DMODULE, module_init()/module_exit()
 * make init_module/cleanup_module aliases and MODULE_INFO() makes a
 * "__UNIQUE_ID_<tag>N" string in .modinfo (compiler/macro-generated names
 * that are duplicated across modules but must never get an alias).
 * Without MODULE, module_init() is a device initcall.
 */
#ifndef _LINUX_MODULE_H
#define _LINUX_MODULE_H

#include <linux/types.h>
#include <linux/init.h>

#define MODULE_NAME_LEN 56

struct module {
	char name[MODULE_NAME_LEN];
	int (*init)(void);
	void (*exit)(void);
	const char *arch;
};

extern struct module __this_module;
extern int init_module(void);
extern void cleanup_module(void);

#ifdef MODULE
#define THIS_MODULE (&__this_module)

#define __MODULE_INFO(tag, name, info)					\
	static const char __UNIQUE_ID(name)[]				\
		__used __section(".modinfo") __aligned(1)		\
		= __stringify(tag) "=" info

#define module_init(initfn)						\
	int init_module(void) __copy(initfn) __attribute__((__alias__(#initfn)))
#define module_exit(exitfn)						\
	void cleanup_module(void) __copy(exitfn) __attribute__((__alias__(#exitfn)))
#else
#define THIS_MODULE ((struct module *)0)
#define __MODULE_INFO(tag, name, info) struct __UNIQUE_ID(name) { }
#define module_init(initfn)	device_initcall(initfn)
#define module_exit(exitfn)	/* built-in code is never unloaded */
#endif

#define MODULE_INFO(tag, info)	__MODULE_INFO(tag, tag, info)
#define MODULE_LICENSE(l)	MODULE_INFO(license, l)
#define MODULE_AUTHOR(a)	MODULE_INFO(author, a)
#define MODULE_DESCRIPTION(d)	MODULE_INFO(description, d)

#define VERMAGIC_STRING		"6.12.0-sample SMP mod_unload "
#define MODULE_ARCH_INIT	"x86_64"

#endif /* _LINUX_MODULE_H */
