// SPDX-License-Identifier: GPL-2.0
/*
 * kcount {single|multi|glob} BPF_OBJECT FUNC... -- COMMAND [ARG...]
 *
 * Attaches kcount.bpf.c's counter to each FUNC by name with libbpf:
 * bpf_program__attach_kprobe_opts, one per FUNC (single), or one
 * bpf_program__attach_kprobe_multi_opts with all FUNCs (multi), or with one
 * FUNC as the glob pattern libbpf matches against the kernel's function names
 * (glob: every copy it attaches counts as that FUNC); runs COMMAND;
 * prints "KCOUNT FUNC HITS" per FUNC. A FUNC the kernel refuses prints
 * "KCOUNT-REFUSED FUNC error" (single) and is left out; a refused multi link
 * prints "KCOUNT-REFUSED * error". Exit status: that of COMMAND, 2 on usage
 * or load errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>

#define MAX_FUNCS 64

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

int main(int argc, char **argv)
{
	const char *funcs[MAX_FUNCS];
	__u64 cookies[MAX_FUNCS];
	int attached[MAX_FUNCS] = { 0 };
	int nfuncs = 0, i, cmd, multi, glob, status;
	struct bpf_object *obj;
	struct bpf_program *prog;
	pid_t pid;

	if (argc < 5 || (strcmp(argv[1], "single") && strcmp(argv[1], "multi") && strcmp(argv[1], "glob"))) {
		fprintf(stderr, "usage: kcount {single|multi|glob} BPF_OBJECT FUNC... -- COMMAND [ARG...]\n");
		return 2;
	}
	glob = !strcmp(argv[1], "glob");
	multi = glob || !strcmp(argv[1], "multi");
	for (i = 3; i < argc && strcmp(argv[i], "--"); i++) {
		if (nfuncs == MAX_FUNCS) {
			fprintf(stderr, "kcount: at most %d functions\n", MAX_FUNCS);
			return 2;
		}
		cookies[nfuncs] = nfuncs;
		funcs[nfuncs++] = argv[i];
	}
	if (i + 1 >= argc || !nfuncs || (glob && nfuncs != 1)) {
		fprintf(stderr, "kcount: no FUNC (glob: one pattern) or no -- COMMAND\n");
		return 2;
	}
	cmd = i + 1;
	libbpf_set_print(quiet);
	obj = bpf_object__open_file(argv[2], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "kcount: cannot load %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	prog = bpf_object__find_program_by_name(obj, multi ? "count_kprobe_multi" : "count_kprobe");
	if (multi) {
		LIBBPF_OPTS(bpf_kprobe_multi_opts, opts, .syms = funcs, .cookies = cookies, .cnt = nfuncs);
		/* a pattern: no cookies, every copy counts at key 0 */
		struct bpf_link *link = glob ? bpf_program__attach_kprobe_multi_opts(prog, funcs[0], NULL) :
					       bpf_program__attach_kprobe_multi_opts(prog, NULL, &opts);

		if (!link)
			printf("KCOUNT-REFUSED * %s\n", strerror(errno));
		for (i = 0; i < nfuncs; i++)
			attached[i] = link != NULL;
	} else {
		for (i = 0; i < nfuncs; i++) {
			LIBBPF_OPTS(bpf_kprobe_opts, opts, .bpf_cookie = cookies[i]);
			struct bpf_link *link = bpf_program__attach_kprobe_opts(prog, funcs[i], &opts);

			if (!link)
				printf("KCOUNT-REFUSED %s %s\n", funcs[i], strerror(errno));
			attached[i] = link != NULL;
		}
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execvp(argv[cmd], &argv[cmd]);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	{
		int map = bpf_object__find_map_fd_by_name(obj, "hits");

		for (i = 0; i < nfuncs; i++) {
			__u32 key = i;
			__u64 n = 0;

			if (!attached[i])
				continue;
			bpf_map_lookup_elem(map, &key, &n);
			printf("KCOUNT %s %llu\n", funcs[i], (unsigned long long)n);
		}
	}
	bpf_object__close(obj);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
