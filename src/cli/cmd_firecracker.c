/*
 * Banyan under Firecracker's name: the process flags Firecracker's clients
 * launch it with (the Go SDK, Kata Containers, firecracker-containerd),
 * translated onto `banyan run` (docs/cli.md, "firecracker"). Flags Banyan
 * has an equivalent for become that option; the process settings with no
 * `banyan run` option (--id, the payload limit, the MMDS's) go to the API
 * layer (api_settings); a flag asking for what Banyan lacks is refused
 * with one line, exit 2.
 */
#include "cli/cli.h"

#include "api/api.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/log.h"
#include "util/parse.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BANYAN_VERSION
#define BANYAN_VERSION "dev"
#endif

#define FC_DEFAULT_API_SOCK "/run/firecracker.socket"
#define FC_DEFAULT_MAX_BODY 51200 /* Firecracker's --http-api-max-payload-size default */
#define FC_RUN_ARGS_MAX	    16

/* The flags as given; translated once all are read. */
struct fc_args {
	char *api_sock;
	char *id;
	char *config_file;
	char *log_path;
	char *level;
	char *metrics_path;
	char *metadata;
	uint64_t max_body;
	uint64_t mmds_size_limit;
	bool no_api;
	bool no_seccomp;
	bool boot_timer;
	uint64_t start_time_us; /* --start-time-us; 0: main's start */
};

enum {
	FC_API_SOCK = 256,
	FC_ID,
	FC_CONFIG_FILE,
	FC_NO_API,
	FC_NO_SECCOMP,
	FC_SECCOMP_FILTER,
	FC_LOG_PATH,
	FC_LEVEL,
	FC_SHOW_LEVEL,
	FC_SHOW_LOG_ORIGIN,
	FC_METRICS_PATH,
	FC_BOOT_TIMER,
	FC_MAX_PAYLOAD,
	FC_MMDS_SIZE,
	FC_METADATA,
	FC_VERSION,
	FC_HELP,
	FC_START_TIME_US, /* the jailer's start on CLOCK_MONOTONIC: the boot timer counts from it */
	FC_START_TIME,	  /* --start-time-cpu-us: a timing hint, unused */
	FC_MODULE,
	FC_UNSUPPORTED,
};

static const struct option fc_options[] = {
    {"api-sock", required_argument, NULL, FC_API_SOCK},
    {"id", required_argument, NULL, FC_ID},
    {"config-file", required_argument, NULL, FC_CONFIG_FILE},
    {"no-api", no_argument, NULL, FC_NO_API},
    {"no-seccomp", no_argument, NULL, FC_NO_SECCOMP},
    {"seccomp-filter", required_argument, NULL, FC_SECCOMP_FILTER},
    {"log-path", required_argument, NULL, FC_LOG_PATH},
    {"level", required_argument, NULL, FC_LEVEL},
    {"module", required_argument, NULL, FC_MODULE},
    {"show-level", no_argument, NULL, FC_SHOW_LEVEL},
    {"show-log-origin", no_argument, NULL, FC_SHOW_LOG_ORIGIN},
    {"metrics-path", required_argument, NULL, FC_METRICS_PATH},
    {"boot-timer", no_argument, NULL, FC_BOOT_TIMER},
    {"http-api-max-payload-size", required_argument, NULL, FC_MAX_PAYLOAD},
    {"mmds-size-limit", required_argument, NULL, FC_MMDS_SIZE},
    {"metadata", required_argument, NULL, FC_METADATA},
    {"version", no_argument, NULL, FC_VERSION},
    {"help", no_argument, NULL, FC_HELP},
    {"start-time-us", required_argument, NULL, FC_START_TIME_US},
    {"start-time-cpu-us", required_argument, NULL, FC_START_TIME},
    {"parent-cpu-time-us", required_argument, NULL, FC_START_TIME},
    {"describe-snapshot", required_argument, NULL, FC_UNSUPPORTED},
    {"enable-pci", no_argument, NULL, FC_UNSUPPORTED},
    {NULL, 0, NULL, 0},
};

static void fc_usage(FILE *f)
{
	fprintf(f,
		"usage: firecracker [--api-sock PATH] [--config-file FILE] [options]\n"
		"Banyan %s serving Firecracker's process interface and API (docs/cli.md):\n"
		"  --api-sock PATH          the API socket (default " FC_DEFAULT_API_SOCK ")\n"
		"  --id ID                  the VM's id: GET / and every log line show it\n"
		"  --config-file FILE       boot at once from this configuration document\n"
		"  --no-api                 no API socket (needs --config-file)\n"
		"  --no-seccomp             no seccomp filter (banyan run --seccomp off)\n"
		"  --seccomp-filter FILE    refused: Banyan installs its own filters only\n"
		"  --log-path PATH          log there (a file or FIFO) instead of stderr\n"
		"  --level LEVEL            Error, Warning, Info, Debug, Trace or Off (any case)\n"
		"  --show-level, --show-log-origin\n"
		"                           accepted; Banyan's lines always show the level\n"
		"  --metrics-path PATH      JSON metrics there, every 60 s and on FlushMetrics\n"
		"  --boot-timer             the boot timer device: the guest's write of 123 at\n"
		"                           0xc0000000 logs the time since start\n"
		"  --http-api-max-payload-size N  largest API body (default %d)\n"
		"  --mmds-size-limit N      the MMDS data store's limit (default %d)\n"
		"  --metadata FILE          the MMDS data store's first contents (JSON)\n"
		"  --version                print the Firecracker API version and Banyan's\n",
		BANYAN_VERSION, FC_DEFAULT_MAX_BODY, API_DEFAULT_MMDS_SIZE);
}

__attribute__((format(printf, 1, 2))) static int fc_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "firecracker (banyan): ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return -EINVAL;
}

/*
 * Kata reads the second field of the first line as a semantic version;
 * the rest of the line says what answers.
 */
static void fc_version(void)
{
	printf("Firecracker v%s (banyan %s, implementing Firecracker's API v%s)\n\n"
	       "This is Banyan, not Firecracker: it serves Firecracker's process flags and API;\n"
	       "docs/api.md lists what it supports and what it refuses.\n",
	       API_FIRECRACKER_VERSION, BANYAN_VERSION, API_FIRECRACKER_VERSION);
}

/* Firecracker's instance ids: 1..64 characters, letters, digits and '-'. */
static int fc_check_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return fc_error("--id must have 1 to 64 characters");
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			return fc_error("--id '%s': only letters, digits and '-'", id);
	return 0;
}

static int fc_number(const char *flag, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
	if (parse_uint(arg, min, max, out) < 0)
		return fc_error("%s '%s' must be a number between %llu and %llu", flag, arg,
				(unsigned long long)min, (unsigned long long)max);
	return 0;
}

/* The flags that only record a value. */
static int fc_parse_value(struct fc_args *a, int opt, char *arg)
{
	switch (opt) {
	case FC_API_SOCK:
		a->api_sock = arg;
		return 0;
	case FC_ID:
		a->id = arg;
		return fc_check_id(arg);
	case FC_CONFIG_FILE:
		a->config_file = arg;
		return 0;
	case FC_LOG_PATH:
		a->log_path = arg;
		return 0;
	case FC_LEVEL:
		a->level = arg;
		return vmcfg_log_level(arg) < 0
			   ? fc_error("--level '%s': Error, Warning, Info, Debug, Trace or Off",
				      arg)
			   : 0;
	case FC_METRICS_PATH:
		a->metrics_path = arg;
		return 0;
	case FC_METADATA:
		a->metadata = arg;
		return 0;
	case FC_START_TIME_US:
		return fc_number("--start-time-us", arg, 1, UINT64_MAX / 1000, &a->start_time_us);
	case FC_MAX_PAYLOAD:
		return fc_number("--http-api-max-payload-size", arg, 1024, API_MAX_BODY_LIMIT,
				 &a->max_body);
	case FC_MMDS_SIZE:
		return fc_number("--mmds-size-limit", arg, 1, API_MAX_BODY_LIMIT,
				 &a->mmds_size_limit);
	default:
		return 1;
	}
}

/* Returns 0, 1 for --help or --version (printed), -EINVAL after one line. */
static int fc_parse_flag(struct fc_args *a, int opt, char *arg, const char *given)
{
	int ret = fc_parse_value(a, opt, arg);

	if (ret <= 0)
		return ret;
	switch (opt) {
	case FC_NO_API:
		a->no_api = true;
		return 0;
	case FC_NO_SECCOMP:
		a->no_seccomp = true;
		return 0;
	case FC_BOOT_TIMER:
		a->boot_timer = true;
		return 0;
	case FC_SHOW_LEVEL:
	case FC_SHOW_LOG_ORIGIN:
	case FC_START_TIME:
		return 0;
	case FC_SECCOMP_FILTER:
		return fc_error("--seccomp-filter: Banyan installs its own per-thread filters and "
				"cannot load a Firecracker BPF file; use --no-seccomp or leave "
				"the default filters");
	case FC_MODULE:
		return fc_error("--module: Banyan's log has no per-module filter");
	case FC_VERSION:
		fc_version();
		return 1;
	case FC_HELP:
		fc_usage(stdout);
		return 1;
	case FC_UNSUPPORTED:
		return fc_error("%s is not supported by Banyan", given);
	default:
		return fc_error("unknown or incomplete option '%s' (see firecracker --help)",
				given);
	}
}

static int fc_parse(struct fc_args *a, int argc, char **argv)
{
	int opt, ret;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", fc_options, NULL)) != -1) {
		ret = fc_parse_flag(a, opt, optarg, argv[optind - 1]);
		if (ret != 0)
			return ret;
	}
	if (optind < argc)
		return fc_error("unexpected argument '%s'", argv[optind]);
	if (a->no_api && !a->config_file)
		return fc_error("--no-api needs --config-file (nothing could configure the VM)");
	return 0;
}

/* --metadata: a JSON object of at most the MMDS's size limit, kept for the MMDS. */
static int fc_load_metadata(const char *path, uint64_t limit, json_object **out)
{
	char err[VMCFG_ERR_LEN];
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret = file_read_all(path, (size_t)limit, &buf, &len);

	if (ret < 0)
		return fc_error("--metadata %s: %s", path,
				ret == -EFBIG	     ? "larger than the MMDS size limit"
				: ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG)
						     : strerror(-ret));
	ret = vmcfg_parse((const char *)buf, len, out, err);
	free(buf);
	if (ret < 0)
		return fc_error("--metadata %s: %s", path, err);
	if (!json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		return fc_error("--metadata %s: the MMDS data store must be a JSON object", path);
	}
	return 0;
}

/* The process settings the API serves with. */
static int fc_settings(const struct fc_args *a)
{
	struct api_settings s = {
	    .instance_id = a->id,
	    .max_body = a->max_body ? (size_t)a->max_body : FC_DEFAULT_MAX_BODY,
	    .mmds_size_limit = a->mmds_size_limit,
	    .metrics_path = a->metrics_path,
	};
	int ret = 0;

	if (a->metadata)
		ret = fc_load_metadata(
		    a->metadata, a->mmds_size_limit ? a->mmds_size_limit : API_DEFAULT_MMDS_SIZE,
		    &s.mmds_initial);
	if (ret == 0)
		api_settings_set(&s);
	return ret;
}

/* Firecracker's level names onto banyan run's --log-level. */
static char *fc_level(const char *level)
{
	static char *const names[] = {
	    [LOG_ERROR] = "error", [LOG_WARN] = "warn", [LOG_INFO] = "info", [LOG_DEBUG] = "debug"};

	return names[vmcfg_log_level(level)];
}

/* The banyan run command line the flags amount to; returns its argc. */
static int fc_run_argv(const struct fc_args *a, char **argv)
{
	int n = 0;

	argv[n++] = "run";
	if (!a->no_api) {
		argv[n++] = "--api-socket";
		argv[n++] = a->api_sock ? a->api_sock : FC_DEFAULT_API_SOCK;
	}
	if (a->config_file) {
		argv[n++] = "--config";
		argv[n++] = a->config_file;
	}
	if (a->log_path) {
		argv[n++] = "--log-file";
		argv[n++] = a->log_path;
	}
	if (a->level) {
		argv[n++] = "--log-level";
		argv[n++] = fc_level(a->level);
	}
	if (a->no_seccomp) {
		argv[n++] = "--seccomp";
		argv[n++] = "off";
	}
	if (a->boot_timer)
		argv[n++] = "--boot-timer";
	argv[n] = NULL;
	return n;
}

int cmd_firecracker(int argc, char **argv)
{
	struct fc_args a = {0};
	char *run_argv[FC_RUN_ARGS_MAX];
	int ret = fc_parse(&a, argc, argv);

	if (ret != 0)
		return ret == 1 ? 0 : EXIT_USAGE;
	if (a.id)
		log_set_instance(a.id);
	if (a.start_time_us)
		clock_mark_start(a.start_time_us * 1000);
	if (fc_settings(&a) < 0)
		return EXIT_USAGE;
	if (a.metrics_path && a.no_api)
		log_warn("--metrics-path: Banyan writes metrics only when it serves the API");
	return cmd_run(fc_run_argv(&a, run_argv), run_argv);
}
