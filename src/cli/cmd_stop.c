/*
 * `banyan stop NAME`: a named VM stops gracefully when it can (Ctrl-Alt-Del
 * through its API), and for sure after a timeout (the API's stop, then
 * SIGKILL if the VMM does not answer).
 */
#include "cli/cli.h"
#include "cli/named.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STOP_DEFAULT_S 10
#define STOP_HARD_S    5 /* after the API's stop, before SIGKILL */

/* Wait up to @ms for the VMM to let go of the name; true when it did. */
static bool wait_gone(const char *name, long ms)
{
	pid_t pid;

	for (; ms > 0; ms -= 50) {
		if (!named_alive(name, &pid))
			return true;
		usleep(50000);
	}
	return !named_alive(name, &pid);
}

/*
 * The steps, gentlest first (the API's only with @sock, NULL when the VM
 * has no socket to reach); returns how it ended ("" when it could not be
 * stopped).
 */
static const char *stop_vm(const char *name, const char *sock, pid_t pid, long timeout_s)
{
	if (timeout_s > 0 && sock &&
	    ctl_call(sock, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", 5, NULL) /
		    100 ==
		2 &&
	    wait_gone(name, timeout_s * 1000))
		return "stopped (the guest shut down)";
	if (sock && ctl_call(sock, "PUT", "/banyan/v1/stop", "", 5, NULL) / 100 == 2 &&
	    wait_gone(name, STOP_HARD_S * 1000))
		return "stopped";
	if (kill(pid, SIGKILL) == 0 && wait_gone(name, STOP_HARD_S * 1000)) {
		named_clean(name);
		return "killed (the VMM did not answer)";
	}
	return "";
}

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {{"timeout", required_argument, NULL, 't'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	char sock[NAMED_PATH], api[64], *end;
	const char *how;
	long timeout_s = STOP_DEFAULT_S;
	pid_t pid;
	int opt, sock_fd;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'h') {
			printf(
			    "usage: banyan stop NAME [--timeout SECONDS]\n"
			    "  Ctrl-Alt-Del to the guest, then after SECONDS (default %d; 0: at\n"
			    "  once) the API's stop, then SIGKILL if the VMM does not answer\n",
			    STOP_DEFAULT_S);
			return 0;
		}
		errno = 0;
		if (opt != 't' || (timeout_s = strtol(optarg, &end, 10)) < 0 || errno || *end) {
			fprintf(stderr, "banyan stop: bad option '%s'\n", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || named_check(argv[optind]) < 0 ||
	    named_path(argv[optind], NAMED_API, sock, sizeof(sock)) < 0) {
		fprintf(stderr, "banyan stop: one valid VM name is expected\n");
		return EXIT_USAGE;
	}
	if (!named_alive(argv[optind], &pid)) {
		named_clean(argv[optind]);
		fprintf(stderr, "banyan stop: %s: no running VM of this name\n", argv[optind]);
		return EXIT_HOST_ERROR;
	}
	/*
	 * Its API never through a link a jailed VM's user made (cli/named.h):
	 * such a VM is killed (its pid is the host's own record) and the
	 * refusal is the status.
	 */
	sock_fd = named_sock_path(sock, api, sizeof(api));
	if (sock_fd == -ELOOP)
		fprintf(stderr, "banyan stop: %s: api.sock: %s\n", argv[optind],
			named_strerror(sock_fd));
	how = stop_vm(argv[optind], sock_fd >= 0 ? api : NULL, pid, timeout_s);
	if (sock_fd >= 0)
		close(sock_fd);
	named_clean(argv[optind]); /* a jailed VMM leaves the host's pid file behind */
	if (!how[0]) {
		fprintf(stderr, "banyan stop: %s: could not be stopped\n", argv[optind]);
		return EXIT_HOST_ERROR;
	}
	printf("%s: %s\n", argv[optind], how);
	return sock_fd == -ELOOP ? EXIT_HOST_ERROR : 0;
}
