/*
 * `banyan ctl`: drive a running VM through its API socket. A thin HTTP
 * client (libcurl over the Unix socket, loaded on first use: curl_dl.h)
 * for the common operations, with human output by default and the API's
 * JSON with --json.
 */
#include "cli/cli.h"
#include "cli/curl_dl.h"
#include "cli/named.h"
#include "cli/progress.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTL_MAX_REPLY  (4 << 20)
#define CTL_TIMEOUT_S  60
#define CTL_SHUTDOWN_S 30 /* shutdown: the guest's time to power off after Ctrl-Alt-Del */
#define CTL_STOP_S     10 /* ...and the VMM's to exit after the hard stop */

/* Exit statuses of banyan ctl (docs/cli.md). */
#define CTL_OK	      0
#define CTL_API_ERROR 1 /* the API refused the request; its fault_message is printed */
#define CTL_NO_VMM    3 /* nothing answers on the socket */

struct ctl_reply {
	long status;
	char *body;
	size_t len;
	bool overflow;
};

/* GET /banyan/v1/progress's snapshot counters. */
struct ctl_snap_count {
	long long count, done, total;
};

struct ctl_cmd {
	const char *name;
	const char *method;
	const char *path;
	const char *body;
	const char *done; /* printed on success for commands without output */
	const char *help;
	bool snapshot; /* writes a snapshot: a progress bar follows it on a terminal */
	bool clones;   /* starts clones: a bar follows them until they run, on a terminal */
};

static const struct ctl_cmd ctl_cmds[] = {
    {"status", "GET", "/banyan/v1/status", NULL, NULL, "state, vCPUs, memory, uptime"},
    {"pause", "PATCH", "/vm", "{\"state\":\"Paused\"}", "paused", "pause every vCPU"},
    {"resume", "PATCH", "/vm", "{\"state\":\"Resumed\"}", "resumed", "resume the vCPUs"},
    {"stop", "PUT", "/banyan/v1/stop", "", "stopped",
     "stop the VM (banyan run exits as on a guest power-off)"},
    {"ctrl-alt-del", "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", "sent Ctrl-Alt-Del",
     "press Ctrl-Alt-Del on the guest's keyboard"},
    {"config", "GET", "/vm/config", NULL, NULL, "the VM's configuration (JSON, as --config reads)"},
    {"metrics", "GET", "/metrics", NULL, NULL, "metrics in Prometheus text format"},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static void ctl_usage(FILE *f)
{
	const struct ctl_cmd *c;

	fprintf(f, "usage: banyan ctl --api-socket PATH | --name NAME [--json] COMMAND\n"
		   "  --api-socket PATH   the socket given to banyan run --api-socket\n"
		   "  --name NAME         the named VM's (banyan run --name NAME)\n"
		   "  --json              print the API's JSON instead of text\n"
		   "commands:\n");
	for (c = ctl_cmds; c->name; c++)
		fprintf(f, "  %-13s %s\n", c->name, c->help);
	fprintf(f, "  snapshot create DIR [--diff] [--paused] [--overwrite]\n"
		   "                full (or diff) snapshot into new directory DIR; --paused\n"
		   "                leaves the VM paused afterwards; --overwrite lets DIR be an\n"
		   "                existing snapshot, replaced atomically\n"
		   "  balloon set MIB | balloon stats\n"
		   "                the balloon's new target; the guest's memory statistics\n");
	fprintf(
	    f, "  clone DIR --count N --console PREFIX [--clone-api-socket PATH] [--snapshot-now]\n"
	       "                run N clones of snapshot DIR in a supervisor of their own that\n"
	       "                outlives this VMM: consoles PREFIX.i, log PREFIX.log, APIs\n"
	       "                PATH.i; --snapshot-now first snapshots this VM into DIR;\n"
	       "                --clone-name NAME: named VMs NAME-1, NAME-2, ... (their\n"
	       "                consoles on their sockets)\n");
	fprintf(f,
		"  migrate URL [--downtime MS] [--bandwidth MIB/S] [--postcopy off|auto|now] "
		"[--verify[=pages]]\n"
		"        [--auto-converge on|off] [--no-wait]\n"
		"        [--tls-cert FILE --tls-key FILE --tls-ca FILE]\n"
		"                live-migrate the VM to banyan run --incoming URL (tcp:HOST:PORT\n"
		"                or unix:PATH) and follow it (a progress bar on a terminal);\n"
		"                --verify: compare memory's CRC at the switch (=pages: each\n"
		"                page's too, so a mismatch names the pages; the VM runs on here)\n"
		"                --auto-converge off: never throttle the vCPUs, fail instead\n"
		"                when pre-copy cannot meet the downtime;\n"
		"                --tls-*: TLS 1.3 on tcp:, files the VMM reads (in its jail)\n"
		"  migrate status | migrate cancel\n"
		"                the migration's status; cancel it (the VM keeps running here)\n");
	fprintf(f,
		"  shutdown [--timeout S]\n"
		"                Ctrl-Alt-Del, wait up to S seconds (default %d) for the VMM\n"
		"                to exit, else stop the VM (systemd's ExecStop)\n",
		CTL_SHUTDOWN_S);
	fprintf(f, "Exit status: 0 done, 1 the API refused (reason printed), 2 usage, "
		   "3 no VMM answers on the socket, or the way to it passes a symbolic\n"
		   "link another user controls (a jailed VM's: never followed).\n");
}

static size_t ctl_write(char *data, size_t size, size_t n, void *arg)
{
	struct ctl_reply *r = arg;
	size_t len = size * n;
	char *p;

	if (r->len + len > CTL_MAX_REPLY) {
		r->overflow = true;
		return 0;
	}
	p = realloc(r->body, r->len + len + 1);
	if (!p)
		return 0;
	memcpy(p + r->len, data, len);
	r->body = p;
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/*
 * libcurl, loaded by the first request and kept for the process's life
 * (one verb per process). NULL after printing why it cannot be loaded.
 */
static const struct curl_dl *ctl_curl(void)
{
	static struct curl_dl lib;
	char err[512];

	if (lib.handle)
		return &lib;
	if (curl_dl_open(&lib, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "banyan ctl: cannot load libcurl (%s); banyan ctl needs %s\n", err,
			CURL_DL_SONAME);
		return NULL;
	}
	return &lib;
}

/* The socket as given, for messages (the one used is /proc/self/fd/N: ctl_resolve). */
static const char *ctl_shown;

/* One request; 0, or -1 after printing why nothing was answered. */
static int ctl_request(const char *sock, const struct ctl_cmd *c, struct ctl_reply *r)
{
	const struct curl_dl *cu = ctl_curl();
	struct curl_slist *hdrs = NULL;
	char url[256], errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	CURL *h = cu ? cu->easy_init() : NULL;

	if (!h)
		return -1;
	snprintf(url, sizeof(url), "http://localhost%s", c->path);
	hdrs = cu->slist_append(hdrs, "Content-Type: application/json");
	hdrs = cu->slist_append(hdrs, "Expect:");
	cu->easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	cu->easy_setopt(h, CURLOPT_URL, url);
	cu->easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
	cu->easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	cu->easy_setopt(h, CURLOPT_TIMEOUT, (long)CTL_TIMEOUT_S);
	cu->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, ctl_write);
	cu->easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (c->body)
		cu->easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
	rc = cu->easy_perform(h);
	if (rc == CURLE_OK)
		cu->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	else
		fprintf(stderr, "banyan ctl: %s: %s\n", ctl_shown ? ctl_shown : sock,
			errbuf[0] ? errbuf : cu->easy_strerror(rc));
	cu->slist_free_all(hdrs);
	cu->easy_cleanup(h);
	return rc == CURLE_OK ? 0 : -1;
}

long ctl_call(const char *sock, const char *method, const char *path, const char *body,
	      long timeout_s, char **reply)
{
	const struct curl_dl *cu = ctl_curl();
	struct ctl_reply r = {.status = -1};
	struct curl_slist *hdrs = cu ? cu->slist_append(NULL, "Expect:") : NULL;
	CURL *h = hdrs ? cu->easy_init() : NULL;
	char url[256];

	if (h) {
		snprintf(url, sizeof(url), "http://localhost%s", path);
		cu->easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
		cu->easy_setopt(h, CURLOPT_URL, url);
		cu->easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		cu->easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		cu->easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
		cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, ctl_write);
		cu->easy_setopt(h, CURLOPT_WRITEDATA, &r);
		if (body)
			cu->easy_setopt(h, CURLOPT_POSTFIELDS, body);
		r.status = 0;
		if (cu->easy_perform(h) == CURLE_OK)
			cu->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
		else
			r.status = -1;
		cu->easy_cleanup(h);
	}
	if (hdrs)
		cu->slist_free_all(hdrs);
	if (reply)
		*reply = r.body;
	else
		free(r.body);
	return r.status;
}

/* A request on a thread of its own, while the main thread follows its progress. */
struct ctl_bg {
	const char *sock;
	const struct ctl_cmd *c;
	struct ctl_reply *r;
	int rc;
	atomic_bool done;
};

static void *ctl_bg_main(void *arg)
{
	struct ctl_bg *b = arg;

	b->rc = ctl_request(b->sock, b->c, b->r);
	atomic_store(&b->done, true);
	return NULL;
}

/* The snapshot counters of GET /banyan/v1/progress; false when the VMM has none. */
static bool ctl_snap_progress(const char *sock, struct ctl_snap_count *n)
{
	json_object *o = NULL, *s = NULL, *v;
	char *body = NULL;
	bool ok = ctl_call(sock, "GET", "/banyan/v1/progress", NULL, 5, &body) == 200 && body &&
		  (o = json_tokener_parse(body)) && json_object_object_get_ex(o, "snapshot", &s);

	if (ok) {
		n->count = json_object_object_get_ex(s, "count", &v) ? json_object_get_int64(v) : 0;
		n->done =
		    json_object_object_get_ex(s, "bytes_done", &v) ? json_object_get_int64(v) : 0;
		n->total =
		    json_object_object_get_ex(s, "bytes_total", &v) ? json_object_get_int64(v) : 0;
	}
	json_object_put(o);
	free(body);
	return ok;
}

/*
 * A request that writes a snapshot, with a bar of the memory written so
 * far: the request runs on a thread while this one polls the progress
 * route, which the VMM answers beside the snapshot. A snapshot counted
 * after the one before the request is taken to be this request's.
 */
static int ctl_request_followed(const char *sock, const struct ctl_cmd *c, struct ctl_reply *r)
{
	struct ctl_bg b = {.sock = sock, .c = c, .r = r};
	const struct timespec tick = {.tv_nsec = 100000000};
	struct ctl_snap_count first, n;
	struct progress bar;
	pthread_t t;

	if (!ctl_snap_progress(sock, &first) || pthread_create(&t, NULL, ctl_bg_main, &b) != 0)
		return ctl_request(sock, c, r); /* a VMM without the route: no bar */
	progress_start(&bar, stderr, "snapshot", 0, true);
	while (!atomic_load(&b.done)) {
		nanosleep(&tick, NULL);
		if (ctl_snap_progress(sock, &n) && n.count > first.count)
			progress_update(&bar, NULL, (uint64_t)n.done, (uint64_t)n.total, NULL);
	}
	pthread_join(t, NULL);
	if (b.rc == 0 && r->status / 100 == 2 && ctl_snap_progress(sock, &n) &&
	    n.count > first.count)
		progress_update(&bar, NULL, (uint64_t)n.done, (uint64_t)n.total, NULL);
	progress_end(&bar);
	return b.rc;
}

/* clone: the supervisor, then one line per clone. */
static void print_clones(json_object *o)
{
	json_object *list = NULL, *pid = NULL, *log = NULL;
	size_t i, n;

	json_object_object_get_ex(o, "supervisor_pid", &pid);
	json_object_object_get_ex(o, "log", &log);
	json_object_object_get_ex(o, "clones", &list);
	printf("supervisor pid %d, log %s\n", json_object_get_int(pid),
	       log ? json_object_get_string(log) : "-");
	n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i), *con = NULL, *api = NULL,
			    *name = NULL;

		json_object_object_get_ex(e, "console", &con);
		json_object_object_get_ex(e, "api_socket", &api);
		json_object_object_get_ex(e, "name", &name);
		if (name)
			printf("clone %zu: name %s", i, json_object_get_string(name));
		else
			printf("clone %zu: console %s", i, con ? json_object_get_string(con) : "-");
		if (api)
			printf(", api %s", json_object_get_string(api));
		printf("\n");
	}
}

static void print_status(json_object *o)
{
	json_object_object_foreach(o, key, val)
	    printf("%-15s %s\n", key, val ? json_object_get_string(val) : "-");
}

/* Human output of a successful reply. */
static void ctl_print(const struct ctl_cmd *c, const struct ctl_reply *r, bool json)
{
	json_object *o;

	if (json) {
		printf("%s\n", r->len ? r->body : "{}");
		return;
	}
	if (c->done) {
		printf("%s\n", c->done);
		return;
	}
	if (strcmp(c->name, "metrics") == 0 || !r->body) {
		fputs(r->body ? r->body : "", stdout);
		return;
	}
	o = json_tokener_parse(r->body);
	if (o && strcmp(c->name, "status") == 0)
		print_status(o);
	else if (o && strcmp(c->name, "clone") == 0)
		print_clones(o);
	else
		printf("%s\n", o ? json_object_to_json_string_ext(
				       o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)
				 : r->body);
	json_object_put(o);
}

static int ctl_fault(const struct ctl_reply *r, bool json)
{
	json_object *o = r->body ? json_tokener_parse(r->body) : NULL;
	json_object *m = NULL;

	if (json && r->body)
		printf("%s\n", r->body);
	if (o && json_object_object_get_ex(o, "fault_message", &m))
		fprintf(stderr, "banyan ctl: %s\n", json_object_get_string(m));
	else
		fprintf(stderr, "banyan ctl: the API answered HTTP %ld\n", r->status);
	json_object_put(o);
	return CTL_API_ERROR;
}

/* The API sockets of the clones in a clones reply (named clones': their api.sock). */
static char **ctl_clone_socks(json_object *list, size_t n)
{
	char **socks = calloc(n + 1, sizeof(*socks)), path[NAMED_PATH];
	json_object *v;

	for (size_t i = 0; socks && i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i);

		if (json_object_object_get_ex(e, "name", &v) &&
		    named_path(json_object_get_string(v), NAMED_API, path, sizeof(path)) == 0)
			socks[i] = strdup(path);
		else if (json_object_object_get_ex(e, "api_socket", &v))
			socks[i] = strdup(json_object_get_string(v));
	}
	return socks;
}

/* A clone runs once its API says so (its vCPUs were started: running or paused). */
static bool ctl_clone_runs(const char *sock)
{
	char path[64], *body = NULL;
	int fd = named_sock_path(sock, path, sizeof(path)); /* not there yet, or refused */
	bool runs = fd >= 0 && ctl_call(path, "GET", "/banyan/v1/status", NULL, 2, &body) == 200 &&
		    body && (strstr(body, "\"Running\"") || strstr(body, "\"Paused\""));

	if (fd >= 0)
		close(fd);
	free(body);
	return runs;
}

/* Poll the clones not yet running; true once all run. */
static bool ctl_clones_poll(char **socks, size_t n, size_t *running)
{
	for (size_t i = 0; i < n; i++) {
		if (socks[i] && ctl_clone_runs(socks[i])) {
			free(socks[i]);
			socks[i] = NULL;
			(*running)++;
		}
	}
	return *running == n;
}

/*
 * A bar of the clones running after PUT /banyan/v1/clones answered (the
 * supervisor then restores them): polled through each clone's API, until
 * all run, the supervisor is gone or CTL_TIMEOUT_S passed. Clones without
 * an API (neither --clone-name nor --clone-api-socket) cannot be followed.
 */
static void ctl_clones_follow(const char *reply)
{
	const struct timespec tick = {.tv_nsec = 100000000};
	json_object *o = json_tokener_parse(reply), *list = NULL, *pid = NULL;
	size_t n = 0, running = 0, all = 0;
	struct progress bar;
	char **socks = NULL;

	if (o && json_object_object_get_ex(o, "clones", &list) &&
	    json_object_object_get_ex(o, "supervisor_pid", &pid))
		all = n = json_object_array_length(list);
	socks = n ? ctl_clone_socks(list, n) : NULL;
	for (size_t i = 0; i < all; i++)
		n = socks && socks[i] ? n : 0;
	progress_start(&bar, stderr, "clones", n, false);
	for (int t = 0; n && t < CTL_TIMEOUT_S * 10; t++) {
		bool done = ctl_clones_poll(socks, n, &running);

		progress_update(&bar, NULL, running, 0, NULL);
		if (done || (kill(json_object_get_int(pid), 0) < 0 && errno == ESRCH))
			break;
		nanosleep(&tick, NULL);
	}
	progress_end(&bar);
	for (size_t i = 0; socks && i < all; i++)
		free(socks[i]);
	free(socks);
	json_object_put(o);
}

static int ctl_run(const char *sock, const struct ctl_cmd *c, bool json)
{
	bool follow = c->snapshot && !json && isatty(STDERR_FILENO);
	struct ctl_reply r = {0};
	int status;

	if ((follow ? ctl_request_followed(sock, c, &r) : ctl_request(sock, c, &r)) < 0) {
		status = CTL_NO_VMM;
	} else if (r.status >= 200 && r.status < 300) {
		ctl_print(c, &r, json);
		if (c->clones && !json && r.body && isatty(STDERR_FILENO))
			ctl_clones_follow(r.body);
		status = CTL_OK;
	} else {
		status = ctl_fault(&r, json);
	}
	free(r.body);
	return status;
}

static const struct option ctl_options[] = {
    {"api-socket", required_argument, NULL, 's'},
    {"name", required_argument, NULL, 'N'},
    {"json", no_argument, NULL, 'j'},
    {"diff", no_argument, NULL, 'd'},
    {"paused", no_argument, NULL, 'p'},
    {"overwrite", no_argument, NULL, 'o'},
    {"count", required_argument, NULL, 'n'},
    {"console", required_argument, NULL, 'c'},
    {"clone-api-socket", required_argument, NULL, 'a'},
    {"clone-name", required_argument, NULL, 'C'},
    {"snapshot-now", no_argument, NULL, 'S'},
    {"downtime", required_argument, NULL, 'D'},
    {"bandwidth", required_argument, NULL, 'B'},
    {"postcopy", required_argument, NULL, 'P'},
    {"verify", optional_argument, NULL, 'V'},
    {"auto-converge", required_argument, NULL, 'A'},
    {"no-wait", no_argument, NULL, 'W'},
    {"timeout", required_argument, NULL, 'T'},
    {"tls-cert", required_argument, NULL, 'X'},
    {"tls-key", required_argument, NULL, 'K'},
    {"tls-ca", required_argument, NULL, 'Y'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/*
 * The VMM may run in another directory, so paths go to the API absolute:
 * @arg's parent must exist, its last component need not. 0, or -1 after
 * printing why.
 */
static int ctl_abs_path(const char *arg, char *out, size_t size)
{
	char parent[4096], abs[4096], *slash;
	const char *base;

	snprintf(parent, sizeof(parent), "%s", arg);
	while (strlen(parent) > 1 && parent[strlen(parent) - 1] == '/')
		parent[strlen(parent) - 1] = '\0';
	slash = strrchr(parent, '/');
	base = slash ? slash + 1 : parent;
	if (!realpath(slash ? (slash == parent ? "/" : (*slash = '\0', parent)) : ".", abs)) {
		fprintf(stderr, "banyan ctl: %s: its parent directory does not exist\n", arg);
		return -1;
	}
	if ((size_t)snprintf(out, size, "%s%s%s", abs, strcmp(abs, "/") ? "/" : "", base) >= size) {
		fprintf(stderr, "banyan ctl: %s: path too long\n", arg);
		return -1;
	}
	return 0;
}

/* Send @o (consumed) as the body of @c. */
static int ctl_run_json(const char *sock, struct ctl_cmd *c, json_object *o, bool json)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	char *body = s ? strdup(s) : NULL;
	int status;

	json_object_put(o);
	if (!body) {
		fprintf(stderr, "banyan ctl: out of memory\n");
		return CTL_API_ERROR;
	}
	c->body = body;
	status = ctl_run(sock, c, json);
	free(body);
	return status;
}

/* What the options of snapshot create ask for. */
struct ctl_snap_opts {
	bool diff;
	bool paused;
	bool overwrite;
};

/* snapshot create DIR [--diff] [--paused] [--overwrite] */
static int ctl_snapshot(const char *sock, char **args, int nargs, const struct ctl_snap_opts *so,
			bool json)
{
	struct ctl_cmd c = {.name = "snapshot",
			    .method = "PUT",
			    .path = "/snapshot/create",
			    .done = "snapshot written",
			    .snapshot = true};
	char dir[4096];
	json_object *o;

	if (nargs != 2 || strcmp(args[0], "create")) {
		fprintf(stderr, "banyan ctl: usage: snapshot create DIR [--diff] [--paused] "
				"[--overwrite]\n");
		return EXIT_USAGE;
	}
	if (ctl_abs_path(args[1], dir, sizeof(dir)) < 0)
		return EXIT_USAGE;
	o = json_object_new_object();
	json_object_object_add(o, "snapshot_path", json_object_new_string(dir));
	json_object_object_add(o, "snapshot_type",
			       json_object_new_string(so->diff ? "Diff" : "Full"));
	json_object_object_add(o, "resume_vm", json_object_new_boolean(!so->paused));
	if (so->overwrite)
		json_object_object_add(o, "overwrite", json_object_new_boolean(true));
	return ctl_run_json(sock, &c, o, json);
}

/* balloon set MIB | balloon stats */
static int ctl_balloon(const char *sock, char **args, int nargs, bool json)
{
	struct ctl_cmd set = {"balloon", "PATCH", "/balloon", NULL, "balloon target set", NULL};
	struct ctl_cmd stats = {"balloon", "GET", "/balloon/statistics", NULL, NULL, NULL};
	unsigned long long mib;
	json_object *o;
	char *end;

	if (nargs == 1 && !strcmp(args[0], "stats"))
		return ctl_run(sock, &stats, json);
	errno = 0;
	mib = nargs == 2 ? strtoull(args[1], &end, 10) : 0;
	if (nargs != 2 || strcmp(args[0], "set") || !args[1][0] || *end || errno ||
	    mib > UINT32_MAX) {
		fprintf(stderr, "banyan ctl: usage: balloon set MIB | balloon stats\n");
		return EXIT_USAGE;
	}
	o = json_object_new_object();
	json_object_object_add(o, "amount_mib", json_object_new_int64((int64_t)mib));
	return ctl_run_json(sock, &set, o, json);
}

/* What the options of clone ask for. */
struct ctl_clone_opts {
	const char *count;
	const char *console;
	const char *api;
	const char *name; /* --clone-name: the clones are NAME-1, NAME-2, ... */
	bool snapshot_now;
};

/* clone DIR --count N --console PREFIX [--clone-api-socket PATH] [--snapshot-now] */
static int ctl_clone(const char *sock, char **args, int nargs, const struct ctl_clone_opts *co,
		     bool json)
{
	struct ctl_cmd c = {.name = "clone",
			    .method = "PUT",
			    .path = "/banyan/v1/clones",
			    .snapshot = co->snapshot_now,
			    .clones = true};
	char dir[4096], console[4096], api[4096], *end;
	long long n;
	json_object *o;

	if (nargs != 1 || !co->count || !co->console) {
		fprintf(stderr, "banyan ctl: usage: clone DIR --count N --console PREFIX "
				"[--clone-api-socket PATH] [--clone-name NAME] [--snapshot-now]\n");
		return EXIT_USAGE;
	}
	errno = 0;
	n = strtoll(co->count, &end, 10);
	if (errno || end == co->count || *end) {
		fprintf(stderr, "banyan ctl: --count '%s' is not a number\n", co->count);
		return EXIT_USAGE;
	}
	if (ctl_abs_path(args[0], dir, sizeof(dir)) < 0 ||
	    ctl_abs_path(co->console, console, sizeof(console)) < 0 ||
	    (co->api && ctl_abs_path(co->api, api, sizeof(api)) < 0))
		return EXIT_USAGE;
	o = json_object_new_object();
	json_object_object_add(o, "snapshot_path", json_object_new_string(dir));
	json_object_object_add(o, "count", json_object_new_int64(n));
	json_object_object_add(o, "console_prefix", json_object_new_string(console));
	if (co->api)
		json_object_object_add(o, "api_socket_prefix", json_object_new_string(api));
	if (co->name)
		json_object_object_add(o, "name", json_object_new_string(co->name));
	json_object_object_add(o, "take_snapshot", json_object_new_boolean(co->snapshot_now));
	return ctl_run_json(sock, &c, o, json);
}

/* What the options of migrate ask for. */
struct ctl_mig_opts {
	const char *downtime;
	const char *bandwidth;
	const char *postcopy;
	const char *auto_converge; /* "on", "off" or NULL (the VMM's default: on) */
	bool verify;
	const char *verify_how; /* --verify=HOW: "pages", or NULL */
	bool no_wait;
	const char *tls[3]; /* --tls-cert, --tls-key, --tls-ca */
};

static bool ctl_mig_opt(struct ctl_mig_opts *mo, int opt, const char *arg)
{
	if (opt == 'D')
		mo->downtime = arg;
	else if (opt == 'B')
		mo->bandwidth = arg;
	else if (opt == 'P')
		mo->postcopy = arg;
	else if (opt == 'V') {
		mo->verify = true;
		mo->verify_how = arg;
	} else if (opt == 'A')
		mo->auto_converge = arg;
	else if (opt == 'W')
		mo->no_wait = true;
	else if (opt == 'X' || opt == 'K' || opt == 'Y')
		mo->tls[opt == 'X' ? 0 : opt == 'K' ? 1 : 2] = arg;
	else
		return false;
	return true;
}

/* GET /banyan/v1/migrate as JSON; NULL when the VMM does not answer. */
static json_object *ctl_mig_get(const char *sock)
{
	const struct ctl_cmd c = {"migrate", "GET", "/banyan/v1/migrate", NULL, NULL, NULL};
	struct ctl_reply r = {0};
	json_object *o = NULL;

	if (ctl_request(sock, &c, &r) == 0 && r.status == 200 && r.body)
		o = json_tokener_parse(r.body);
	free(r.body);
	return o;
}

static long long ctl_num(json_object *o, const char *key)
{
	json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? (long long)json_object_get_int64(v) : 0;
}

static const char *ctl_str(json_object *o, const char *key)
{
	json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static void ctl_mig_bar(struct progress *bar, json_object *o)
{
	char extra[96];

	snprintf(extra, sizeof(extra), "round %lld, %lld MiB dirty, ~%lld ms", ctl_num(o, "round"),
		 ctl_num(o, "bytes_remaining") >> 20, ctl_num(o, "predicted_downtime_ms"));
	progress_update(bar, ctl_str(o, "phase"), (uint64_t)ctl_num(o, "bytes_sent"),
			(uint64_t)ctl_num(o, "memory_bytes"), extra);
}

/* The final pause, "3.912 ms" (downtime_us; a VMM without it: downtime_ms). */
static void ctl_mig_pause(json_object *o, char *buf, size_t len)
{
	json_object *v = NULL;
	long long us = json_object_object_get_ex(o, "downtime_us", &v)
			   ? (long long)json_object_get_int64(v)
			   : ctl_num(o, "downtime_ms") * 1000;

	snprintf(buf, len, "%lld.%03lld ms", us / 1000, us % 1000);
}

/* Follow the migration until it ends; the source VMM exits once it migrated. */
static int ctl_mig_follow(const char *sock)
{
	struct progress bar;
	char last[32] = "setup";
	const struct timespec tick = {.tv_nsec = 100000000};
	int status;

	progress_start(&bar, stderr, "setup", 0, true);
	for (;;) {
		json_object *o = ctl_mig_get(sock);
		const char *phase;

		if (!o) {
			bool done = strcmp(last, "switch") == 0 || strcmp(last, "migrated") == 0;

			progress_end(&bar);
			fprintf(stderr, "banyan ctl: the source VMM exited (%s)\n",
				done ? "migrated" : "during the migration; check the destination");
			return done ? CTL_OK : CTL_API_ERROR;
		}
		phase = ctl_str(o, "phase");
		snprintf(last, sizeof(last), "%s", phase);
		ctl_mig_bar(&bar, o);
		if (strcmp(phase, "migrated") == 0 || strcmp(phase, "failed") == 0 ||
		    strcmp(phase, "cancelled") == 0) {
			char pause[32];

			ctl_mig_pause(o, pause, sizeof(pause));
			progress_end(&bar);
			fprintf(stderr, "%s: %s%s%s%s (pause %s, total %lld ms, %lld bytes)\n",
				phase, ctl_str(o, "outcome"),
				ctl_num(o, "verified") ? ", verified" : "",
				ctl_num(o, "auto_converged") ? ", auto-converged" : "",
				ctl_num(o, "postcopy") ? ", post-copy" : "", pause,
				ctl_num(o, "total_ms"), ctl_num(o, "bytes_sent"));
			status = strcmp(phase, "migrated") == 0 ? CTL_OK : CTL_API_ERROR;
			json_object_put(o); /* phase points into it */
			return status;
		}
		json_object_put(o);
		nanosleep(&tick, NULL);
	}
}

static bool ctl_add_uint(json_object *o, const char *key, const char *opt, const char *v)
{
	char *end;
	long long n;

	if (!v)
		return true;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < 0) {
		fprintf(stderr, "banyan ctl: %s '%s' is not a number\n", opt, v);
		return false;
	}
	json_object_object_add(o, key, json_object_new_int64(n));
	return true;
}

/* migrate URL [options] | migrate status | migrate cancel */
static int ctl_migrate(const char *sock, char **args, int nargs, const struct ctl_mig_opts *mo,
		       bool json)
{
	struct ctl_cmd c = {"migrate", "PUT", "/banyan/v1/migrate", NULL, NULL, NULL};
	json_object *o;
	int status;

	if (nargs != 1) {
		fprintf(
		    stderr,
		    "banyan ctl: usage: migrate URL [--downtime MS] [--bandwidth MIB/S] "
		    "[--postcopy off|auto|now] [--auto-converge on|off] [--verify[=pages]] "
		    "[--no-wait] "
		    "[--tls-cert F --tls-key F --tls-ca F] | migrate status | migrate cancel\n");
		return EXIT_USAGE;
	}
	if (mo->auto_converge && strcmp(mo->auto_converge, "on") &&
	    strcmp(mo->auto_converge, "off")) {
		fprintf(stderr, "banyan ctl: --auto-converge takes on or off, not '%s'\n",
			mo->auto_converge);
		return EXIT_USAGE;
	}
	if (mo->verify_how && strcmp(mo->verify_how, "pages")) {
		fprintf(stderr, "banyan ctl: --verify takes no value or pages, not '%s'\n",
			mo->verify_how);
		return EXIT_USAGE;
	}
	if (strcmp(args[0], "status") == 0) {
		c.method = "GET";
		return ctl_run(sock, &c, true);
	}
	if (strcmp(args[0], "cancel") == 0) {
		c.method = "DELETE";
		c.done = "cancelled";
		return ctl_run(sock, &c, json);
	}
	o = json_object_new_object();
	json_object_object_add(o, "url", json_object_new_string(args[0]));
	json_object_object_add(o, "verify",
			       mo->verify_how ? json_object_new_string("pages")
					      : json_object_new_boolean(mo->verify));
	if (mo->auto_converge)
		json_object_object_add(
		    o, "auto_converge",
		    json_object_new_boolean(strcmp(mo->auto_converge, "on") == 0));
	if (mo->postcopy)
		json_object_object_add(o, "postcopy", json_object_new_string(mo->postcopy));
	for (unsigned int i = 0; i < 3; i++)
		if (mo->tls[i])
			json_object_object_add(o,
					       (const char *[]){"tls_cert", "tls_key", "tls_ca"}[i],
					       json_object_new_string(mo->tls[i]));
	if (!ctl_add_uint(o, "downtime_ms", "--downtime", mo->downtime) ||
	    !ctl_add_uint(o, "bandwidth_mib_s", "--bandwidth", mo->bandwidth)) {
		json_object_put(o);
		return EXIT_USAGE;
	}
	status = ctl_run_json(sock, &c, o, json);
	if (status != CTL_OK || mo->no_wait)
		return status;
	return ctl_mig_follow(sock);
}

/* --name NAME: the API socket in the VM's runtime directory. 0, or -1 after printing why. */
static int ctl_named(const char *name, char *sock, size_t size)
{
	if (named_check(name) == 0 && named_path(name, NAMED_API, sock, size) == 0)
		return 0;
	fprintf(stderr, "banyan ctl: bad VM name '%s'\n", name);
	return -1;
}

/*
 * The socket @*sock reached by named_resolve's rule (cli/named.h: no
 * symbolic link another user controls, as in a jail's root): @*sock then
 * names it as /proc/self/fd/N in @buf, its descriptor kept for the
 * process's life. 0, or -1 after printing why.
 */
static int ctl_resolve(const char **sock, char *buf, size_t size)
{
	int fd = named_sock_path(*sock, buf, size);

	if (fd < 0) {
		fprintf(stderr, "banyan ctl: %s: %s\n", *sock, named_strerror(fd));
		return -1;
	}
	ctl_shown = *sock;
	*sock = buf;
	return 0;
}

/* Nothing accepts on @sock any more: the VMM has exited (or is closing its API). */
static bool ctl_vmm_gone(const char *sock)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return ret < 0 && (errno == ECONNREFUSED || errno == ENOENT);
}

static bool ctl_wait_gone(const char *sock, unsigned long seconds)
{
	const struct timespec tick = {.tv_nsec = 100 * 1000 * 1000};

	for (unsigned long i = 0; i < seconds * 10; i++) {
		if (ctl_vmm_gone(sock))
			return true;
		nanosleep(&tick, NULL);
	}
	return ctl_vmm_gone(sock);
}

static const struct ctl_cmd *ctl_find(const char *name)
{
	const struct ctl_cmd *c;

	for (c = ctl_cmds; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* shutdown: the guest's own shutdown first, a hard stop when it does not come. */
static int ctl_shutdown(const char *sock, int nargs, const char *timeout)
{
	unsigned long t = CTL_SHUTDOWN_S;
	char *end = NULL;
	int status;

	if (timeout && (t = strtoul(timeout, &end, 10), *end || !*timeout || t > 86400)) {
		fprintf(stderr, "banyan ctl: --timeout takes seconds, not '%s'\n", timeout);
		return EXIT_USAGE;
	}
	if (nargs != 0) {
		fprintf(stderr, "banyan ctl: usage: shutdown [--timeout S]\n");
		return EXIT_USAGE;
	}
	status = ctl_run(sock, ctl_find("ctrl-alt-del"), false);
	if (status != CTL_OK || ctl_wait_gone(sock, t))
		return status;
	fprintf(stderr, "banyan ctl: the guest did not shut down within %lu s: stopping it\n", t);
	status = ctl_run(sock, ctl_find("stop"), false);
	if (status == CTL_OK && !ctl_wait_gone(sock, CTL_STOP_S)) {
		fprintf(stderr, "banyan ctl: the VMM still answers after the stop\n");
		return CTL_API_ERROR;
	}
	return status == CTL_NO_VMM ? CTL_OK : status; /* it exited meanwhile */
}

int cmd_ctl(int argc, char **argv)
{
	const char *timeout = NULL;
	struct ctl_mig_opts mo = {0};
	struct ctl_clone_opts co = {0};
	struct ctl_snap_opts so = {0};
	const char *sock = NULL;
	char named_sock[NAMED_PATH], resolved[64];
	const struct ctl_cmd *c;
	bool json = false;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", ctl_options, NULL)) != -1) {
		if (opt == 'h') {
			ctl_usage(stdout);
			return 0;
		}
		if (opt == '?') {
			fprintf(stderr, "banyan ctl: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
		if (opt == 's')
			sock = optarg;
		else if (opt == 'N' && ctl_named(optarg, named_sock, sizeof(named_sock)) < 0)
			return EXIT_USAGE;
		else if (opt == 'N')
			sock = named_sock;
		else if (opt == 'd')
			so.diff = true;
		else if (opt == 'p')
			so.paused = true;
		else if (opt == 'o')
			so.overwrite = true;
		else if (opt == 'n')
			co.count = optarg;
		else if (opt == 'c')
			co.console = optarg;
		else if (opt == 'a')
			co.api = optarg;
		else if (opt == 'C')
			co.name = optarg;
		else if (opt == 'S')
			co.snapshot_now = true;
		else if (opt == 'T')
			timeout = optarg;
		else if (!ctl_mig_opt(&mo, opt, optarg))
			json = true;
	}
	/* --api-socket too: a path into a jail's root is as much its user's as --name's. */
	if (sock && optind < argc && ctl_resolve(&sock, resolved, sizeof(resolved)) < 0)
		return CTL_NO_VMM;
	if (sock && optind < argc && strcmp(argv[optind], "snapshot") == 0)
		return ctl_snapshot(sock, argv + optind + 1, argc - optind - 1, &so, json);
	if (sock && optind < argc && strcmp(argv[optind], "migrate") == 0)
		return ctl_migrate(sock, argv + optind + 1, argc - optind - 1, &mo, json);
	if (sock && optind < argc && strcmp(argv[optind], "balloon") == 0)
		return ctl_balloon(sock, argv + optind + 1, argc - optind - 1, json);
	if (sock && optind < argc && strcmp(argv[optind], "shutdown") == 0)
		return ctl_shutdown(sock, argc - optind - 1, timeout);
	if (sock && optind < argc && strcmp(argv[optind], "clone") == 0)
		return ctl_clone(sock, argv + optind + 1, argc - optind - 1, &co, json);
	if (!sock || optind != argc - 1) {
		fprintf(stderr, "banyan ctl: %s (see banyan ctl --help)\n",
			!sock ? "--api-socket or --name is required"
			      : "exactly one command is expected");
		return EXIT_USAGE;
	}
	for (c = ctl_cmds; c->name; c++)
		if (strcmp(c->name, argv[optind]) == 0)
			return ctl_run(sock, c, json);
	fprintf(stderr, "banyan ctl: unknown command '%s' (see banyan ctl --help)\n", argv[optind]);
	return EXIT_USAGE;
}
