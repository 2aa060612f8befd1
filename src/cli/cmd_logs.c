/* `banyan logs NAME [-f]`: a named VM's vm.log (the console's output and, detached, the VMM's log).
 */
#include "cli/cli.h"
#include "cli/named.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGS_POLL_US 200000

/* Copy what follows @*off to stdout; a file emptied by a new run starts over. */
static int copy_new(int fd, off_t *off)
{
	char buf[65536];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) == 0 && st.st_size < *off)
		*off = 0;
	while ((n = pread(fd, buf, sizeof(buf), *off)) > 0) {
		if (write(STDOUT_FILENO, buf, (size_t)n) != n)
			return -1;
		*off += n;
	}
	return n < 0 ? -1 : 0;
}

/* -f: until the VM's VMM is gone (then what it wrote last), or a signal. */
static int follow(int fd, const char *name)
{
	off_t off = 0;
	pid_t pid;
	bool alive;

	do {
		alive = named_alive(name, &pid);
		if (copy_new(fd, &off) < 0)
			return EXIT_HOST_ERROR;
		if (alive)
			usleep(LOGS_POLL_US);
	} while (alive);
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	char path[NAMED_PATH];
	const char *name = NULL;
	bool f = false;
	off_t off = 0;
	int i, fd, ret;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			f = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return printf("usage: banyan logs NAME [-f]\n  the VM's vm.log; -f follows "
				      "it until the VM stops\n"),
			       0;
		else if (!name && argv[i][0] != '-')
			name = argv[i];
		else
			return fprintf(stderr, "banyan logs: unexpected argument '%s'\n", argv[i]),
			       EXIT_USAGE;
	}
	if (!name || named_path(name, NAMED_LOG, path, sizeof(path)) < 0) {
		fprintf(stderr, "banyan logs: %s\n",
			name ? "bad VM name" : "a VM name is expected");
		return EXIT_USAGE;
	}
	/* A jailed VM's vm.log is in its root: never read through a link its user made. */
	fd = named_open(path);
	if (fd < 0) {
		fprintf(stderr, "banyan logs: %s: %s%s%s\n", name, fd == -ELOOP ? "" : "no log (",
			named_strerror(fd), fd == -ELOOP ? "" : ")");
		return EXIT_HOST_ERROR;
	}
	ret = f ? follow(fd, name) : (copy_new(fd, &off) < 0 ? EXIT_HOST_ERROR : 0);
	close(fd);
	return ret;
}
