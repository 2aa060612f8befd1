/* banyan: a virtual machine monitor for Linux/KVM. Dispatches the verb. */
#include "api/clones.h"
#include "cli/cli.h"
#include "security/seccomp.h"
#include "util/clock.h"

#include <stdio.h>
#include <string.h>

#ifndef BANYAN_VERSION
#define BANYAN_VERSION "dev"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: banyan <command> [options]\n"
		   "commands:\n"
		   "  run       boot a VM in the foreground, console on stdio (or named:\n"
		   "            --name NAME [--detach], docs/operations.md)\n"
		   "  ls        list the named VMs\n"
		   "  console   attach the terminal to a named VM's console\n"
		   "  logs      print (or follow) a named VM's log\n"
		   "  stop      stop a named VM (Ctrl-Alt-Del, then hard after a timeout)\n"
		   "  ctl       control a running VM through its API socket\n"
		   "  restore   continue a VM (or N clones) from a snapshot\n"
		   "  snapshot  list, show, verify or delete snapshots in a store\n"
		   "  jail      run a VM as an unprivileged user in a root of its own\n"
		   "  version   print the version\n"
		   "Run 'banyan <command> --help' for a command's options.\n");
}

/* Invoked through a link named "firecracker": Firecracker's flags (docs/cli.md). */
static bool named_firecracker(const char *argv0)
{
	const char *base = argv0 ? strrchr(argv0, '/') : NULL;

	base = base ? base + 1 : argv0;
	return base && strcmp(base, "firecracker") == 0;
}

int main(int argc, char **argv)
{
	clock_mark_start(0); /* what the boot timer counts from */
	if (named_firecracker(argv[0]))
		return cmd_firecracker(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "ctl") == 0)
		return cmd_ctl(argc - 1, argv + 1);
	if (strcmp(argv[1], "restore") == 0)
		return cmd_restore(argc - 1, argv + 1);
	if (strcmp(argv[1], "snapshot") == 0)
		return cmd_snapshot(argc - 1, argv + 1);
	if (strcmp(argv[1], "jail") == 0)
		return cmd_jail(argc - 1, argv + 1);
	if (strcmp(argv[1], "ls") == 0)
		return cmd_ls(argc - 1, argv + 1);
	if (strcmp(argv[1], "console") == 0)
		return cmd_console(argc - 1, argv + 1);
	if (strcmp(argv[1], "logs") == 0)
		return cmd_logs(argc - 1, argv + 1);
	if (strcmp(argv[1], "stop") == 0)
		return cmd_stop(argc - 1, argv + 1);
	/* Hidden: the API's clone helper, as banyan run starts it (api/clones.h). */
	if (strcmp(argv[1], "clones-helper") == 0)
		return api_clones_helper_main(argc - 1, argv + 1);
	/* Hidden: the allowlists, for tools/seccomp-audit. */
	if (strcmp(argv[1], "seccomp-lists") == 0)
		return seccomp_print_lists(stdout) < 0 ? EXIT_HOST_ERROR : 0;
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("banyan %s\n", BANYAN_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "banyan: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
