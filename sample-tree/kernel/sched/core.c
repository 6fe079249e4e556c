// SPDX-License-Identifier: GPL-2.0
/*
 * sample-tree: kernel/sched/core.c
 * case 7: same basename as drivers/base/core.c; both define a static
 *         show_state;
 * case 3: user-named function-local "static int count;" in two functions
 *         (GCC 12 numbers all local statics of a unit with one counter:
 *         count.1 and count.2 here; drivers/base/core.c has another count.2),
 *         a switch that GCC turns into a CSWTCH.N table, __key.N;
 * case 4: out-of-line copy of jhash;
 * case 6: update_load.isra.0 (IPA-SRA passes lw->weight instead of lw);
 * case 8: sched_show_state() is the tiny global wrapper that ThinLTO imports
 *         into init/main.c, promoting show_state to show_state.llvm.<hash>.
 */
#include <linux/kernel.h>
#include <linux/spinlock.h>
#include <linux/jhash.h>
#include <linux/rhashtable.h>
#include <linux/sysfs.h>
#include <linux/init.h>

struct load_weight {
	unsigned long weight;
	u32 inv_weight;
};

struct rq {
	spinlock_t lock;
	unsigned int nr_running;
	unsigned long clock;
	struct load_weight load;
	int cpu;
	int state;
};

static struct rq runqueues[2];
static struct rhashtable task_ht;

static const struct rhashtable_params task_ht_params = {
	.key_len = sizeof(int),
	.key_offset = offsetof(struct rq, cpu),
	.hashfn = jhash,
};

static noinline int show_state(struct rq *rq, char *buf)
{
	return sysfs_emit(buf, "cpu%d: state %d running %u\n",
			  rq->cpu, rq->state, rq->nr_running);
}

int sched_show_state(char *buf, int cpu)
{
	return show_state(&runqueues[cpu & 1], buf);
}

static noinline unsigned long update_load(struct load_weight *lw)
{
	return lw->weight * 3;
}

int sched_account_tick(int cpu)
{
	static int count;
	struct rq *rq = &runqueues[cpu & 1];

	rq->clock += update_load(&rq->load);
	return ++count;
}

int sched_account_switch(int cpu)
{
	static int count;
	struct rq *rq = &runqueues[cpu & 1];

	rq->clock += update_load(&rq->load) + cpu;
	return ++count;
}

int sched_prio_to_weight(int nice)
{
	switch (nice) {
	case 0: return 1024;
	case 1: return 820;
	case 2: return 655;
	case 3: return 526;
	case 4: return 423;
	case 5: return 335;
	case 6: return 272;
	default: return 15;
	}
}

static int __init sched_init(void)
{
	int i;

	for (i = 0; i < 2; i++) {
		runqueues[i].cpu = i;
		spin_lock_init(&runqueues[i].lock);
	}
	return rhashtable_init(&task_ht, &task_ht_params);
}
core_initcall(sched_init);
