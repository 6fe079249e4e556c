// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: init/main.c
 * The entry point _start (vmlinux ENTRY), ordinary global functions and data,
 * the initcall walk, and a file-scope compound literal (__compound_literal.N,
 * case 3).  start_kernel() calls the tiny global wrappers sched_show_state()
 * and device_show_state(): under LLVM=1 ThinLTO imports them into this module,
 * which promotes the static show_state of kernel/sched/core.c and of
 * drivers/base/core.c to "show_state.llvm.<hash>" (case 8).
 */
#include <linux/kernel.h>
#include <linux/init.h>

extern initcall_t __initcall_start[], __initcall_end[];

struct device;
int sched_show_state(char *buf, int cpu);
int device_show_state(struct device *dev, char *buf);
int sched_account_tick(int cpu);
int sched_account_switch(int cpu);
int sched_prio_to_weight(int nice);

int system_state;
const char linux_banner[] = "Linux version 6.12.0-sample\n";
static char boot_buf[64];

/* case 3: __compound_literal.N (the array), pointed to by boot_prio */
static const int *boot_prio = (const int []){ 3, 1, 2, 0 };

static noinline int do_one_initcall(initcall_t fn)
{
	int ret = fn();

	if (ret)
		pr_err("%s: initcall %p returned %d\n", __func__, fn, ret);
	return ret;
}

static void do_initcalls(void)
{
	initcall_t *fn;

	for (fn = __initcall_start; fn < __initcall_end; fn++)
		do_one_initcall(*fn);
}

void start_kernel(void)
{
	int i, weight = 0;

	printk("%s", linux_banner);
	do_initcalls();
	for (i = 0; i < 4; i++)
		weight += sched_prio_to_weight(boot_prio[i]);
	sched_account_tick(system_state);
	sched_account_switch(system_state);
	sched_show_state(boot_buf, system_state);
	device_show_state(NULL, boot_buf);
	system_state = weight;
}

void __noreturn _start(void)
{
	start_kernel();
	for (;;)
		;
}
