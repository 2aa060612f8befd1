/*
 * The run arguments name host paths; inside the jail the VMM finds its
 * files at fixed places: /kernel, /initrd, /diskN (and /diskN.overlay),
 * the sockets in /run under the names the operator gave, the log at
 * /banyan.log and a rewritten --config at /config.json. Everything else
 * passes through unchanged.
 */
#include "jail/jail.h"

#include "config/vmcfg.h"
#include "util/errmsg.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fail(err, ...) errmsg_set(err, JAIL_ERR_LEN, -EINVAL, __VA_ARGS__)

/* A malloc'ed string; NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *str_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

int jail_plan_add(struct jail_plan *p, const char *host, const char *inside,
		  enum jail_file_kind kind, const char *what, char *err)
{
	struct jail_file *f = &p->files[p->nfiles];

	if (p->nfiles == JAIL_MAX_FILES)
		return errmsg_set(err, JAIL_ERR_LEN, -E2BIG, "more than %d files", JAIL_MAX_FILES);
	if (!jail_path_valid(host))
		return fail(err, "%s '%s': an absolute path without '..' is needed", what, host);
	for (unsigned int i = 0; i < p->nfiles; i++) {
		if (strcmp(p->files[i].inside, inside ? inside : host))
			continue;
		if (kind == JAIL_FILE_EXEC)
			return 0; /* a shared object the loader named twice */
		return fail(err, "%s '%s': given twice (run would use only one)", what, host);
	}
	f->host = strdup(host);
	f->inside = strdup(inside ? inside : host);
	f->kind = kind;
	f->what = what;
	if (!f->host || !f->inside) {
		free(f->host);
		free(f->inside);
		return errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory");
	}
	p->nfiles++;
	return 0;
}

static int push_arg(struct jail_plan *p, const char *s, char *err)
{
	if (p->argc == JAIL_MAX_ARGS)
		return fail(err, "more than %d run arguments", JAIL_MAX_ARGS);
	p->argv[p->argc] = strdup(s);
	if (!p->argv[p->argc])
		return errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory");
	p->argc++;
	return 0;
}

/* A socket the VMM creates: in /run under the operator's name for it. */
static char *socket_inside(struct jail_plan *p, const char *what, const char *host, char *err)
{
	char *copy = strdup(host), *s;

	if (!copy || !jail_path_valid(host)) {
		fail(err, "%s '%s': an absolute path without '..' is needed", what, host);
		free(copy);
		return NULL;
	}
	s = str_fmt(JAIL_RUN_DIR "/%s", basename(copy));
	free(copy);
	for (unsigned int i = 0; s && i < p->nsockets; i++) {
		if (strcmp(p->sockets[i], s) == 0) {
			fail(err, "%s '%s': another socket has the same name", what, host);
			free(s);
			return NULL;
		}
	}
	if (s && p->nsockets < sizeof(p->sockets) / sizeof(p->sockets[0]))
		p->sockets[p->nsockets++] = strdup(s);
	return s;
}

/* The inside name of disk @n's image or overlay, recorded with its kind. */
static char *disk_inside(struct jail_plan *p, unsigned int n, const char *host, bool overlay,
			 bool ro, char *err)
{
	char *in = str_fmt("/disk%u%s", n, overlay ? ".overlay" : "");
	enum jail_file_kind kind = overlay ? JAIL_FILE_NEW : ro ? JAIL_FILE_RO : JAIL_FILE_RW;

	if (in && jail_plan_add(p, host, in, kind, overlay ? "overlay" : "disk", err) < 0) {
		free(in);
		return NULL;
	}
	return in;
}

/* Does the --disk value have the word @w (bare or with '=')? */
static bool disk_has_word(const char *arg, const char *w)
{
	size_t n = strlen(w);

	for (const char *s = arg; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL)
		if (strncmp(s, w, n) == 0 && (s[n] == ',' || s[n] == '=' || !s[n]))
			return true;
	return false;
}

/* What a word rewriter knows of its option: the disk's number and mode. */
struct word_ctx {
	unsigned int n;
	bool ro;
};

/* Writes @word, or what replaces it, to @out; @first: the option's first word. */
typedef int (*word_fn)(struct jail_plan *p, char *word, bool first, const struct word_ctx *c,
		       FILE *out, char *err);

/* One word of --disk, rewritten when it names a file. */
static int disk_word(struct jail_plan *p, char *word, bool first, const struct word_ctx *c,
		     FILE *out, char *err)
{
	bool is_path = strncmp(word, "path=", 5) == 0 ||
		       (first && !strchr(word, '=') && strcmp(word, "ro") != 0);
	bool is_overlay = strncmp(word, "overlay=", 8) == 0;
	const char *host = strchr(word, '=') ? strchr(word, '=') + 1 : word;
	char *in;

	if (!is_path && !is_overlay) {
		fputs(word, out);
		return 0;
	}
	in = disk_inside(p, c->n, host, is_overlay, c->ro, err);
	if (!in)
		return -EINVAL;
	fprintf(out, "%s%s", is_path ? "path=" : "overlay=", in);
	free(in);
	return 0;
}

/* One word of --vsock: its socket moves to /run. */
static int vsock_word(struct jail_plan *p, char *word, bool first, const struct word_ctx *c,
		      FILE *out, char *err)
{
	char *eq = strchr(word, '='), *in;

	(void)first;
	(void)c;
	if (!eq || (strncmp(word, "socket=", 7) && strncmp(word, "path=", 5))) {
		fputs(word, out);
		return 0;
	}
	in = socket_inside(p, "--vsock socket", eq + 1, err);
	if (!in)
		return -EINVAL;
	fprintf(out, "socket=%s", in);
	free(in);
	return 0;
}

/* @arg's comma-separated words through @fn, then pushed as one argument. */
static int rewrite_words(struct jail_plan *p, const char *arg, word_fn fn, const struct word_ctx *c,
			 char *err)
{
	char *copy = strdup(arg), *rest = copy, *word, *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	int ret = copy && out ? 0 : -ENOMEM;

	for (bool first = true; ret == 0 && (word = strsep(&rest, ",")); first = false) {
		if (!first)
			fputc(',', out);
		ret = fn(p, word, first, c, out, err);
	}
	if (out)
		fclose(out);
	if (ret == 0)
		ret = push_arg(p, buf, err);
	free(copy);
	free(buf);
	return ret == -ENOMEM ? errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory") : ret;
}

/* --disk path=FILE[,...][,overlay=FILE]: the same words with inside paths. */
static int rewrite_disk(struct jail_plan *p, unsigned int n, const char *arg, char *err)
{
	struct word_ctx c = {.n = n,
			     .ro = disk_has_word(arg, "ro") || disk_has_word(arg, "overlay")};

	return rewrite_words(p, arg, disk_word, &c, err);
}

/* --vsock cid=N,socket=PATH: the socket moves to /run. */
static int rewrite_vsock(struct jail_plan *p, const char *arg, char *err)
{
	return rewrite_words(p, arg, vsock_word, NULL, err);
}

/* Replace *@s (owned by a vmcfg) with @in, recording @s's file with @kind. */
static int doc_file(struct jail_plan *p, char **s, const char *in, enum jail_file_kind kind,
		    const char *what, char *err)
{
	char *dup;
	int ret;

	if (!*s)
		return 0;
	ret = jail_plan_add(p, *s, in, kind, what, err);
	if (ret < 0)
		return ret;
	dup = strdup(in);
	if (!dup)
		return errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory");
	free(*s);
	*s = dup;
	return 0;
}

/* A socket path of the document: moved to /run. */
static int doc_socket(struct jail_plan *p, char **s, const char *what, char *err)
{
	char *in;

	if (!*s)
		return 0;
	in = socket_inside(p, what, *s, err);
	if (!in)
		return -EINVAL;
	free(*s);
	*s = in;
	return 0;
}

static int doc_drives(struct jail_plan *p, struct vmcfg *c, char *err)
{
	char in[32];
	int ret = 0;

	for (unsigned int i = 0; ret == 0 && i < c->ndrives; i++) {
		struct vmcfg_drive *d = &c->drives[i];
		bool ro = d->is_read_only || d->overlay_path;

		snprintf(in, sizeof(in), "/disk%u", i);
		ret = doc_file(p, &d->path_on_host, in, ro ? JAIL_FILE_RO : JAIL_FILE_RW, "disk",
			       err);
		snprintf(in, sizeof(in), "/disk%u.overlay", i);
		if (ret == 0)
			ret = doc_file(p, &d->overlay_path, in, JAIL_FILE_NEW, "overlay", err);
	}
	return ret;
}

/* Every path of a --config document, moved inside the jail. */
static int doc_rewrite(struct jail_plan *p, struct vmcfg *c, char *err)
{
	int ret = doc_file(p, &c->kernel_image_path, "/kernel", JAIL_FILE_RO, "kernel", err);

	if (ret == 0)
		ret = doc_file(p, &c->initrd_path, "/initrd", JAIL_FILE_RO, "initrd", err);
	if (ret == 0)
		ret = doc_drives(p, c, err);
	if (ret == 0)
		ret = doc_socket(p, &c->vsock_uds_path, "vsock uds_path", err);
	if (ret == 0)
		ret = doc_file(p, &c->log_path, "/banyan.log", JAIL_FILE_NEW, "log", err);
	if (ret == 0)
		ret = doc_file(p, &c->metrics_path, "/metrics", JAIL_FILE_NEW, "metrics", err);
	return ret;
}

/* --config FILE: read it, rewrite its paths, keep the document for /config.json. */
static int rewrite_config(struct jail_plan *p, const char *path, char *err)
{
	char why[VMCFG_ERR_LEN];
	struct vmcfg c;
	json_object *doc = NULL;
	int ret;

	vmcfg_init(&c);
	ret = vmcfg_load_file(&c, path, why);
	if (ret < 0)
		fail(err, "--config %s: %s", path, why);
	if (ret == 0)
		ret = doc_rewrite(p, &c, err);
	if (ret == 0 && !(doc = vmcfg_to_json(&c)))
		ret = errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory");
	if (ret == 0)
		p->config_json = strdup(json_object_to_json_string_ext(
		    doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (ret == 0 && !p->config_json)
		ret = errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory");
	json_object_put(doc);
	vmcfg_free(&c);
	return ret < 0 ? ret : push_arg(p, JAIL_CONFIG_FILE, err);
}

/* The value of run option @name, rewritten (or passed) onto the command line. */
static int rewrite_value(struct jail_plan *p, const char *name, const char *arg,
			 unsigned int *ndisks, char *err)
{
	char *in = NULL;
	int ret;

	if (strcmp(name, "kernel") == 0 || strcmp(name, "initrd") == 0) {
		in = str_fmt("/%s", name);
		ret = in ? jail_plan_add(p, arg, in, JAIL_FILE_RO, name, err) : -ENOMEM;
	} else if (strcmp(name, "log-file") == 0) {
		ret = jail_plan_add(p, arg, "/banyan.log", JAIL_FILE_NEW, "log file", err);
		in = ret == 0 ? strdup("/banyan.log") : NULL;
	} else if (strcmp(name, "api-socket") == 0) {
		in = socket_inside(p, "--api-socket", arg, err);
		ret = in ? 0 : -EINVAL;
		if (in && !(p->api_socket = strdup(in)))
			ret = -ENOMEM;
	} else if (strcmp(name, "name") == 0) {
		p->name = strdup(arg);
		return p->name ? push_arg(p, arg, err)
			       : errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory");
	} else if (strcmp(name, "disk") == 0) {
		return rewrite_disk(p, (*ndisks)++, arg, err);
	} else if (strcmp(name, "vsock") == 0) {
		return rewrite_vsock(p, arg, err);
	} else if (strcmp(name, "config") == 0) {
		return rewrite_config(p, arg, err);
	} else {
		return push_arg(p, arg, err);
	}
	if (ret == 0)
		ret = push_arg(p, in, err);
	free(in);
	return ret == -ENOMEM ? errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory") : ret;
}

/* getopt wants a program name first and a NULL last. */
static char **run_vector(int argc, char **argv)
{
	char **v = calloc((size_t)argc + 2, sizeof(*v));

	if (v) {
		v[0] = "run";
		memcpy(v + 1, argv, (size_t)argc * sizeof(*v));
	}
	return v;
}

static int walk_run_args(struct jail_plan *p, const struct option *run_opts, int argc, char **v,
			 char *err)
{
	unsigned int ndisks = 0;
	int opt, idx, ret = 0;
	char *dashed;

	opterr = 0;
	optind = 1;
	while (ret == 0 && (idx = -1, opt = getopt_long(argc, v, "+", run_opts, &idx)) != -1) {
		if (opt == '?' || idx < 0)
			return fail(err, "banyan run: unknown or incomplete option '%s'",
				    v[optind - 1]);
		/* The VMM cannot detach from inside: the jail's own --daemonize does. */
		if (strcmp(run_opts[idx].name, "detach") == 0)
			return fail(err, "--detach: use banyan jail --daemonize instead");
		/* An optional value (--rng=LIMITS) names no file and stays one word. */
		if (run_opts[idx].has_arg == optional_argument && optarg)
			dashed = str_fmt("--%s=%s", run_opts[idx].name, optarg);
		else
			dashed = str_fmt("--%s", run_opts[idx].name);
		ret = dashed ? push_arg(p, dashed, err) : -ENOMEM;
		free(dashed);
		if (ret == 0 && run_opts[idx].has_arg == required_argument)
			ret = rewrite_value(p, run_opts[idx].name, optarg, &ndisks, err);
	}
	if (ret == 0 && optind < argc)
		return fail(err, "banyan run: unexpected argument '%s'", v[optind]);
	return ret;
}

int jail_plan_run(struct jail_plan *p, const struct option *run_opts, int argc, char **argv,
		  char *err)
{
	char **v = run_vector(argc, argv);
	int ret = v ? 0 : errmsg_set(err, JAIL_ERR_LEN, -ENOMEM, "out of memory");

	if (ret == 0)
		ret = push_arg(p, "/" JAIL_EXEC_NAME, err);
	if (ret == 0)
		ret = push_arg(p, "run", err);
	if (ret == 0)
		ret = walk_run_args(p, run_opts, argc + 1, v, err);
	free(v);
	return ret;
}

void jail_plan_free(struct jail_plan *p)
{
	for (unsigned int i = 0; i < p->nfiles; i++) {
		free(p->files[i].host);
		free(p->files[i].inside);
	}
	for (int i = 0; i < p->argc; i++)
		free(p->argv[i]);
	for (unsigned int i = 0; i < p->nsockets; i++)
		free(p->sockets[i]);
	free(p->config_json);
	free(p->name);
	free(p->api_socket);
	*p = (struct jail_plan){0};
}
