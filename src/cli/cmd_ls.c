/*
 * `banyan ls`: the named VMs of this user (cli/named.h), each asked
 * through its API. A VM whose VMM died is shown as dead once, and its
 * stale files (pid file, sockets) are removed; its vm.log stays.
 */
#include "cli/cli.h"
#include "cli/named.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LS_API_TIMEOUT_S 2

struct ls_vm {
	const char *name;
	const char *state; /* running, paused, waiting (for InstanceStart), dead, unknown */
	pid_t pid;
	long long vcpus, mem_mib, rss_kib; /* -1: unknown */
	double uptime;			   /* seconds; < 0: unknown */
	char state_buf[32];
};

/* VmRSS of /proc/PID/status, in KiB; -1 when unknown. */
static long long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static long long json_num(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_int64(v) : -1;
}

/* The API's state, lower case ("Not started": waiting for InstanceStart). */
static void ls_state(struct ls_vm *v, json_object *o)
{
	json_object *s;
	const char *t;
	size_t i;

	if (!json_object_object_get_ex(o, "state", &s) || !(t = json_object_get_string(s)))
		return;
	if (strcmp(t, "Not started") == 0)
		t = "waiting";
	for (i = 0; t[i] && i < sizeof(v->state_buf) - 1; i++)
		v->state_buf[i] = (char)(t[i] >= 'A' && t[i] <= 'Z' ? t[i] - 'A' + 'a' : t[i]);
	v->state_buf[i] = '\0';
	v->state = v->state_buf;
}

/* A live VM: its API's status, its process's memory. */
static void ls_ask(struct ls_vm *v)
{
	char sock[NAMED_PATH], api[64], *body = NULL;
	json_object *o = NULL, *u;
	int fd = -1;

	v->state = "unknown";
	v->rss_kib = rss_kib(v->pid);
	/* Never through a link a jailed VM's user made (cli/named.h): "unknown" then. */
	if (named_path(v->name, NAMED_API, sock, sizeof(sock)) == 0 &&
	    (fd = named_sock_path(sock, api, sizeof(api))) >= 0 &&
	    ctl_call(api, "GET", "/banyan/v1/status", NULL, LS_API_TIMEOUT_S, &body) == 200)
		o = json_tokener_parse(body);
	if (fd >= 0)
		close(fd);
	free(body);
	if (!o)
		return;
	ls_state(v, o);
	v->vcpus = json_num(o, "vcpus");
	v->mem_mib = json_num(o, "mem_size_mib");
	if (json_object_object_get_ex(o, "uptime_seconds", &u) && u)
		v->uptime = json_object_get_double(u);
	json_object_put(o);
}

/* One directory of the root: false when it holds no VM (no pid file, or not a name). */
static bool ls_one(const char *name, struct ls_vm *v)
{
	*v = (struct ls_vm){.name = name, .vcpus = -1, .mem_mib = -1, .rss_kib = -1, .uptime = -1};
	if (named_check(name) < 0)
		return false;
	if (named_alive(name, &v->pid)) {
		ls_ask(v);
		return true;
	}
	if (!named_stale(name))
		return false;
	v->state = "dead";
	named_clean(name); /* shown once */
	return true;
}

static void print_num(long long n, const char *unit)
{
	char buf[32];

	if (n < 0)
		snprintf(buf, sizeof(buf), "-");
	else
		snprintf(buf, sizeof(buf), "%lld%s", n, unit);
	printf(" %8s", buf);
}

static void print_uptime(double s)
{
	char buf[32];
	long long t = (long long)s;

	if (s < 0)
		snprintf(buf, sizeof(buf), "-");
	else if (t < 3600)
		snprintf(buf, sizeof(buf), "%lldm%02llds", t / 60, t % 60);
	else
		snprintf(buf, sizeof(buf), "%lldh%02lldm", t / 3600, t / 60 % 60);
	printf(" %9s", buf);
}

static void print_text(const struct ls_vm *v)
{
	printf("%-20s %-8s", v->name, v->state);
	print_num(v->vcpus, "");
	print_num(v->mem_mib, "M");
	print_num(v->rss_kib < 0 ? -1 : v->rss_kib / 1024, "M");
	print_uptime(v->uptime);
	print_num(v->pid > 0 && strcmp(v->state, "dead") ? v->pid : -1, "");
	printf("\n");
}

static json_object *num_or_null(long long n)
{
	return n < 0 ? NULL : json_object_new_int64(n);
}

static json_object *to_json(const struct ls_vm *v)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "state", json_object_new_string(v->state));
	json_object_object_add(o, "vcpus", num_or_null(v->vcpus));
	json_object_object_add(o, "mem_size_mib", num_or_null(v->mem_mib));
	json_object_object_add(o, "rss_kib", num_or_null(v->rss_kib));
	json_object_object_add(o, "uptime_seconds",
			       v->uptime < 0 ? NULL : json_object_new_double(v->uptime));
	json_object_object_add(o, "pid", num_or_null(v->pid > 0 ? v->pid : -1));
	return o;
}

static void ls_usage(FILE *f)
{
	fprintf(f, "usage: banyan ls [--json] [-q]\n"
		   "  the named VMs (banyan run --name) of this user: name, state, vCPUs,\n"
		   "  memory, the VMM's resident memory, uptime, pid; a VM whose VMM died\n"
		   "  is shown as dead once, and its stale files are removed\n"
		   "  --json   a JSON array, one object per VM\n"
		   "  -q       names only, one per line\n");
}

/* The names in the root, sorted; -1 (nothing) when there is no root yet. */
static int ls_names(struct dirent ***names)
{
	char root[NAMED_PATH];

	if (named_root(root, sizeof(root)) < 0)
		return -1;
	return scandir(root, names, NULL, alphasort);
}

static void ls_print(int n, struct dirent **names, bool json, bool quiet)
{
	json_object *arr = json ? json_object_new_array() : NULL;
	struct ls_vm v;
	int i;

	if (!json && !quiet)
		printf("%-20s %-8s %8s %8s %8s %9s %8s\n", "NAME", "STATE", "VCPUS", "MEMORY",
		       "RSS", "UPTIME", "PID");
	for (i = 0; i < n; i++) {
		if (!ls_one(names[i]->d_name, &v))
			continue;
		if (arr)
			json_object_array_add(arr, to_json(&v));
		else if (quiet)
			printf("%s\n", v.name);
		else
			print_text(&v);
	}
	if (arr)
		printf("%s\n", json_object_to_json_string_ext(
				   arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct dirent **names = NULL;
	bool json = false, quiet = false;
	int opt, n, i;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		if (opt == 'h') {
			ls_usage(stdout);
			return 0;
		}
		if (opt == '?' || optind > argc) {
			fprintf(stderr, "banyan ls: unknown option '%s'\n", argv[optind - 1]);
			return EXIT_USAGE;
		}
		json |= opt == 'j';
		quiet |= opt == 'q';
	}
	if (optind < argc) {
		fprintf(stderr, "banyan ls: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	n = ls_names(&names);
	ls_print(n, names, json, quiet);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}
