/*
 * `banyan restore`: continue a VM from a snapshot in this process, or run
 * N clones of it.
 *
 * Clones: the snapshot is opened and checked once, then the process forks
 * N children (a KVM VM belongs to the process that created it, so each
 * clone needs its own). Each child restores the VM with its own identity
 * (generation ID, MAC, vsock CID), writes its console to CONSOLE.i and
 * serves its API on PATH.i; all of them map the same memory file
 * MAP_PRIVATE, so the pages they only read are shared through the page
 * cache. The parent supervises: it forwards SIGINT/SIGTERM/SIGHUP to the
 * clones and exits when the last one has, with the worst exit status.
 */
#include "cli/cli.h"
#include "cli/named.h"
#include "cli/progress.h"

#include "snapshot/snapshot.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/parse.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLONES 1024

struct restore_opts {
	const char *dir;
	const char *api_path;
	const char *console_prefix;
	const char *name; /* --name: the VM's (clones: NAME-1, NAME-2, ...) */
	bool detach;
	const char *overlay_prefix; /* NULL: clones use the console prefix */
	bool paused;
	bool verify_memory;
	unsigned int clones;	   /* 0: restore once, in this process */
	enum sandbox_mode sandbox; /* --seccomp */
};

static void restore_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: banyan restore --snapshot DIR [options]\n"
	    "  --snapshot DIR       the snapshot (a diff snapshot brings its parents)\n"
	    "  --api-socket PATH    serve the API there (clones: PATH.0, PATH.1, ...)\n"
	    "  --paused             restore without running the vCPUs (resume through the API)\n"
	    "  --clones N           run N clones, one process each, sharing memory copy-on-write\n"
	    "  --console PREFIX     clones: console output to PREFIX.0, PREFIX.1, ...\n"
	    "                       (default banyan-clone in the current directory)\n"
	    "  --overlay-prefix P   disk overlays go to P.vdX.overlay (clones: P.N.vdX.overlay,\n"
	    "                       default the console prefix); needed to restore a snapshot\n"
	    "                       that carries overlays: never the path it recorded\n"
	    "  --no-verify-memory   skip the memory checksum (sections are always checked)\n"
	    "  --log-file PATH      log there (clones: PATH.N)\n"
	    "  --name NAME          a named VM (banyan run --name; clones: NAME-1, NAME-2,\n"
	    "                       ..., their consoles then on their sockets)\n"
	    "  --detach             with --name, one VM: return once it runs\n"
	    "  --log-level LEVEL    error, warn, info (default), debug\n"
	    "  --log-format FORMAT  text (default) or json (one object per line)\n"
	    "  --seccomp MODE       strict (default), log or off (see banyan run --help)\n"
	    "The console is the terminal when restoring one VM: Ctrl-A x quits.\n");
}

enum {
	OPT_SNAPSHOT = 256,
	OPT_API,
	OPT_PAUSED,
	OPT_CLONES,
	OPT_CONSOLE,
	OPT_OVERLAY_PREFIX,
	OPT_NO_VERIFY,
	OPT_LOG_FILE,
	OPT_LOG_LEVEL,
	OPT_NAME,
	OPT_DETACH,
	OPT_SECCOMP,
	OPT_HELP,
	OPT_LOG_FORMAT
};

static const struct option restore_options[] = {
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"api-socket", required_argument, NULL, OPT_API},
    {"paused", no_argument, NULL, OPT_PAUSED},
    {"clones", required_argument, NULL, OPT_CLONES},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"name", required_argument, NULL, OPT_NAME},
    {"detach", no_argument, NULL, OPT_DETACH},
    {"overlay-prefix", required_argument, NULL, OPT_OVERLAY_PREFIX},
    {"no-verify-memory", no_argument, NULL, OPT_NO_VERIFY},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"seccomp", required_argument, NULL, OPT_SECCOMP},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const char *log_file;

static int restore_option(struct restore_opts *o, int opt, const char *arg)
{
	uint64_t v;

	switch (opt) {
	case OPT_SNAPSHOT:
		o->dir = arg;
		return 0;
	case OPT_API:
		o->api_path = arg;
		return 0;
	case OPT_PAUSED:
		o->paused = true;
		return 0;
	case OPT_CONSOLE:
		o->console_prefix = arg;
		return 0;
	case OPT_NAME:
		o->name = arg;
		return named_check(arg) == 0
			   ? 0
			   : (fprintf(stderr, "banyan restore: bad VM name '%s'\n", arg), -EINVAL);
	case OPT_DETACH:
		o->detach = true;
		return 0;
	case OPT_OVERLAY_PREFIX:
		o->overlay_prefix = arg;
		return 0;
	case OPT_NO_VERIFY:
		o->verify_memory = false;
		return 0;
	case OPT_LOG_FILE:
		log_file = arg;
		return 0;
	case OPT_CLONES:
		if (parse_uint(arg, 1, MAX_CLONES, &v) < 0)
			return fprintf(stderr,
				       "banyan restore: --clones '%s' out of range (1..%d)\n", arg,
				       MAX_CLONES),
			       -EINVAL;
		o->clones = (unsigned int)v;
		return 0;
	case OPT_SECCOMP:
		if (sandbox_mode_parse(arg, &o->sandbox) == 0)
			return 0;
		return fprintf(stderr, "banyan restore: --seccomp takes strict, log or off\n"),
		       -EINVAL;
	case OPT_LOG_LEVEL:
		if (log_level_from_name(arg) >= 0)
			return log_set_level((enum log_level)log_level_from_name(arg)), 0;
		return fprintf(stderr, "banyan restore: unknown log level '%s'\n", arg), -EINVAL;
	case OPT_LOG_FORMAT:
		if (log_set_format(arg) == 0)
			return 0;
		return fprintf(stderr, "banyan restore: --log-format takes text or json\n"),
		       -EINVAL;
	default:
		return fprintf(stderr,
			       "banyan restore: unknown or incomplete option '%s' (see "
			       "banyan restore --help)\n",
			       arg ? arg : "?"),
		       -EINVAL;
	}
}

static int parse_restore_args(struct restore_opts *o, int argc, char **argv)
{
	int opt;

	*o = (struct restore_opts){.verify_memory = true, .console_prefix = "banyan-clone"};
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", restore_options, NULL)) != -1) {
		if (opt == OPT_HELP)
			return 1;
		if (restore_option(o, opt, opt == '?' ? argv[optind - 1] : optarg) < 0)
			return -EINVAL;
	}
	if (o->detach && (!o->name || o->clones)) {
		fprintf(stderr, "banyan restore: --detach needs --name and one VM\n");
		return -EINVAL;
	}
	if (o->name && o->clones && strlen(o->name) + 1 + 3 > NAMED_MAX) {
		fprintf(stderr, "banyan restore: --name: at most %d characters with --clones\n",
			NAMED_MAX - 4);
		return -EINVAL;
	}
	if (optind < argc || !o->dir) {
		fprintf(stderr, "banyan restore: %s (see banyan restore --help)\n",
			o->dir ? "unexpected argument" : "--snapshot DIR is required");
		return -EINVAL;
	}
	return 0;
}

static int open_log(const char *suffix)
{
	char path[4096];

	if (!log_file)
		return 0;
	snprintf(path, sizeof(path), "%s%s", log_file, suffix);
	return log_open_file(path);
}

/* One clone, in a forked child: never returns. @started_fd: its supervisor's count. */
static void clone_child(struct snapshot_image *img, const struct restore_opts *o, unsigned int i,
			int started_fd)
{
	struct run_snapshot_args a = {.img = img,
				      .paused = o->paused,
				      .clone_index = (int)i,
				      .sandbox = o->sandbox,
				      .t0_ns = now_ns(),
				      .started_fd = started_fd};
	char suffix[16], console[4096], api[4096], overlays[4096 + 16], name[NAMED_MAX + 1];
	int fd, null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	snprintf(suffix, sizeof(suffix), ".%u", i);
	snprintf(console, sizeof(console), "%s%s", o->console_prefix, suffix);
	if (o->name) {
		/* Named clones count from 1; their consoles are their sockets. */
		snprintf(name, sizeof(name), "%s-%u", o->name, i + 1);
		a.name = name;
		a.log_given = log_file != NULL;
		fd = null_fd;
	} else {
		fd = open(console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	}
	if (fd < 0 || null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || open_log(suffix) < 0) {
		fprintf(stderr, "banyan restore: clone %u: cannot open %s: %s\n", i, console,
			strerror(errno));
		_exit(EXIT_HOST_ERROR);
	}
	if (o->api_path) {
		snprintf(api, sizeof(api), "%s%s", o->api_path, suffix);
		a.api_path = api;
	}
	a.console_fd = fd;
	snprintf(overlays, sizeof(overlays), "%s%s",
		 o->overlay_prefix ? o->overlay_prefix : console, o->overlay_prefix ? suffix : "");
	a.overlay_prefix = overlays;
	_exit(run_snapshot(&a));
}

static volatile sig_atomic_t forward_sig;

static void on_forward(int sig)
{
	forward_sig = sig;
}

static void forward_to_clones(const pid_t *pids, unsigned int n)
{
	int sig = (int)forward_sig;

	forward_sig = 0;
	for (unsigned int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], sig);
}

/* The clones running so far, from the bytes on @fd (non-blocking; -1: none), drawn. */
static void count_started(struct progress *bar, int fd, unsigned int n, unsigned int *started)
{
	char buf[256];
	ssize_t got;

	while (fd >= 0 && (got = read(fd, buf, sizeof(buf))) > 0)
		*started += (unsigned int)got;
	progress_update(bar, NULL, *started, 0, NULL);
	if (*started >= n)
		progress_end(bar);
}

/*
 * Wait for every clone, passing termination signals on; returns the worst
 * status. Polls with WNOHANG rather than blocking in waitpid: a signal that
 * lands between the flag check and a blocking wait would never be passed on.
 * @started_fd: where the clones report running (count_started), or -1.
 */
static int supervise(pid_t *pids, unsigned int n, int started_fd)
{
	struct sigaction sa = {.sa_handler = on_forward};
	struct timespec tick = {.tv_nsec = 20 * 1000 * 1000};
	unsigned int left = n, started = 0;
	struct progress bar;
	int worst = 0, st;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	progress_start(&bar, stderr, "clones", n, false);
	while (left) {
		pid_t p;

		if (started < n)
			count_started(&bar, started_fd, n, &started);
		if (forward_sig)
			forward_to_clones(pids, n);
		p = waitpid(-1, &st, WNOHANG);
		if (p == 0 || (p < 0 && errno == EINTR)) {
			nanosleep(&tick, NULL);
			continue;
		}
		if (p < 0)
			break;
		for (unsigned int i = 0; i < n; i++)
			if (pids[i] == p)
				pids[i] = -1;
		st = WIFEXITED(st) ? WEXITSTATUS(st) : EXIT_SIGNAL_BASE + WTERMSIG(st);
		worst = st > worst ? st : worst;
		left--;
	}
	progress_end(&bar);
	return worst;
}

static int run_clones(struct snapshot_image *img, const struct restore_opts *o)
{
	pid_t *pids = calloc(o->clones, sizeof(*pids));
	int started[2] = {-1, -1};
	uint64_t t0, t1;
	unsigned int i;

	if (!pids)
		return EXIT_HOST_ERROR;
	/* Only a terminal shows the count: without one the clones need not report. */
	if (isatty(STDERR_FILENO) && pipe2(started, O_CLOEXEC | O_NONBLOCK) < 0)
		started[0] = started[1] = -1;
	t0 = now_ns();
	/* Once for all clones: each child's sandbox setup finds the filters compiled. */
	if (seccomp_compile(o->sandbox) < 0)
		log_warn("cannot compile the seccomp filters: each clone tries again");
	/* And what KVM supports (the CPUID), which each clone would otherwise ask for. */
	if (vm_prepare_host() < 0)
		log_warn("cannot ask KVM what it supports: each clone tries again");
	fflush(NULL);
	for (i = 0; i < o->clones; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			clone_child(img, o, i, started[1]);
		if (pids[i] < 0) {
			log_error("cannot fork clone %u: %s", i, strerror(errno));
			break;
		}
		if (o->name)
			printf("clone %u: pid %d, name %s-%u", i, (int)pids[i], o->name, i + 1);
		else
			printf("clone %u: pid %d, console %s.%u", i, (int)pids[i],
			       o->console_prefix, i);
		if (o->api_path)
			printf(", api %s.%u", o->api_path, i);
		printf("\n");
	}
	t1 = now_ns();
	log_info("%u clones started in %.1f ms", i, (double)(t1 - t0) / 1e6);
	fflush(stdout);
	snapshot_close(img);
	if (started[1] >= 0)
		close(started[1]);
	i = (unsigned int)supervise(pids, i, started[0]);
	if (started[0] >= 0)
		close(started[0]);
	free(pids);
	return (int)i;
}

int cmd_restore(int argc, char **argv)
{
	uint64_t t0 = now_ns();
	struct restore_opts o;
	struct snapshot_image *img;
	char err[SNAP_ERR_LEN] = "";
	int ret = parse_restore_args(&o, argc, argv);

	if (ret != 0) {
		if (ret == 1)
			restore_usage(stdout);
		return ret == 1 ? 0 : EXIT_USAGE;
	}
	if (!o.clones && open_log("") < 0) {
		fprintf(stderr, "banyan restore: cannot open log file %s\n", log_file);
		return EXIT_USAGE;
	}
	if (snapshot_open(o.dir, o.verify_memory, &img, err) < 0) {
		fprintf(stderr, "banyan restore: %s\n", err);
		return EXIT_USAGE;
	}
	if (o.clones)
		return run_clones(img, &o);
	return run_snapshot(&(struct run_snapshot_args){.img = img,
							.console_fd = STDOUT_FILENO,
							.api_path = o.api_path,
							.paused = o.paused,
							.clone_index = -1,
							.sandbox = o.sandbox,
							.overlay_prefix = o.overlay_prefix,
							.t0_ns = t0,

							.name = o.name,
							.detach = o.detach,
							.log_given = log_file != NULL});
}
