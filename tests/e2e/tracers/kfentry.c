// SPDX-License-Identifier: GPL-2.0
/*
 * kfentry BPF_OBJECT -- COMMAND [ARG...]
 *
 * Opens and loads kfentry.bpf.c's object with libbpf (which finds each SEC("fentry/NAME")
 * target in the kernel's BTF by name), attaches every program, runs COMMAND and prints
 * "KFENTRY PROGRAM HITS" for net_fentry, net_fexit, perf_fentry, kobj_fentry and v1_fexit. A refused load or
 * attach prints "KFENTRY-REFUSED WHAT error" (libbpf's own messages go to stderr).
 * Exit status: that of COMMAND, 2 on usage or load errors.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>

static const char *const programs[] = { "net_fentry", "net_fexit", "perf_fentry", "kobj_fentry", "v1_fexit" };

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	int status, map, err;
	unsigned int i;
	pid_t pid;

	if (argc < 4 || strcmp(argv[2], "--")) {
		fprintf(stderr, "usage: kfentry BPF_OBJECT -- COMMAND [ARG...]\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	err = obj ? bpf_object__load(obj) : -errno;
	if (err) {
		printf("KFENTRY-REFUSED load %s\n", strerror(-err));
		return 2;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__attach(prog)) {
			printf("KFENTRY-REFUSED %s %s\n", bpf_program__name(prog), strerror(errno));
			return 2;
		}
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execvp(argv[3], &argv[3]);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	map = bpf_object__find_map_fd_by_name(obj, "hits");
	for (i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
		__u64 n = 0;

		bpf_map_lookup_elem(map, &i, &n);
		printf("KFENTRY %s %llu\n", programs[i], (unsigned long long)n);
	}
	bpf_object__close(obj);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
