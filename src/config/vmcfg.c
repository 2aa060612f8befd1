/* The VM document: Firecracker's JSON schema, checked field by field. */
#include "config/vmcfg.h"

#include "util/errmsg.h"
#include "util/file.h"
#include "util/log.h"
#include "util/parse.h"
#include "mmds/mmds.h"
#include "virtio/virtio.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define VMCFG_MAX_DEPTH 16
#define VMCFG_MAX_PATH	PATH_MAX
#define VMCFG_MAX_ARGS	4096

/* One expected field of an object: its name, JSON type, and whether PUT needs it. */
struct field {
	const char *name;
	enum json_type type;
	bool required;
};

#define fail(err, ...) errmsg_set(err, VMCFG_ERR_LEN, -EINVAL, __VA_ARGS__)

static const char *type_name(enum json_type t)
{
	switch (t) {
	case json_type_boolean:
		return "a boolean";
	case json_type_int:
		return "an integer";
	case json_type_string:
		return "a string";
	case json_type_array:
		return "an array";
	case json_type_object:
		return "an object";
	default:
		return "null";
	}
}

static const struct field *find_field(const struct field *fields, const char *name)
{
	for (; fields->name; fields++)
		if (strcmp(fields->name, name) == 0)
			return fields;
	return NULL;
}

/*
 * @body must be an object whose every key is one of @fields, of the right
 * type (null counts as absent for optional fields); with !@patch every
 * required field must be there.
 */
static int check_object(json_object *body, const char *what, const struct field *fields, bool patch,
			char *err)
{
	const struct field *f;

	if (!json_object_is_type(body, json_type_object))
		return fail(err, "%s: expected a JSON object", what);
	json_object_object_foreach(body, key, val)
	{
		f = find_field(fields, key);
		if (!f)
			return fail(err, "%s: unknown field '%s'", what, key);
		if (!val && !f->required)
			continue;
		if (!json_object_is_type(val, f->type))
			return fail(err, "%s: field '%s' must be %s", what, key,
				    type_name(f->type));
	}
	for (f = fields; !patch && f->name; f++)
		if (f->required && !json_object_object_get_ex(body, f->name, NULL))
			return fail(err, "%s: missing required field '%s'", what, f->name);
	return 0;
}

/* The value of @key, or NULL when absent or null. */
static json_object *get(json_object *body, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(body, key, &v);
	return v;
}

/* A string field: no NUL inside, not empty, at most @max bytes. NULL when absent. */
static int get_str(json_object *body, const char *what, const char *key, size_t max,
		   const char **out, char *err)
{
	json_object *v = get(body, key);
	size_t len;

	*out = NULL;
	if (!v)
		return 0;
	len = (size_t)json_object_get_string_len(v);
	*out = json_object_get_string(v);
	if (len == 0)
		return fail(err, "%s: field '%s' must not be empty", what, key);
	if (strlen(*out) != len)
		return fail(err, "%s: field '%s' contains a NUL byte", what, key);
	if (len > max)
		return fail(err, "%s: field '%s' is longer than %zu bytes", what, key, max);
	return 0;
}

/*
 * A path that exists must be of @kinds: a FIFO or a device named as a
 * kernel or a disk is refused now (stat only: it is never opened here, so
 * this never blocks). A missing path waits for InstanceStart.
 */
static int path_kind(const char *what, const char *key, const char *path, unsigned int kinds,
		     char *err)
{
	if (path && file_check_kind(path, kinds) == -FILE_EKIND)
		return fail(err, "%s: '%s' %s is %s", what, key, path, file_kind_error(kinds));
	return 0;
}

static int get_uint(json_object *body, const char *what, const char *key, uint64_t min,
		    uint64_t max, uint64_t *out, char *err)
{
	json_object *v = get(body, key);
	int64_t i;

	if (!v)
		return 0;
	i = json_object_get_int64(v);
	errno = 0;
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max || i == INT64_MAX)
		return fail(err, "%s: field '%s' must be between %llu and %llu", what, key,
			    (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)i;
	return 0;
}

static void get_bool(json_object *body, const char *key, bool *out)
{
	json_object *v = get(body, key);

	if (v)
		*out = json_object_get_boolean(v);
}

/* An optional field Banyan accepts only as null (e.g. rate limiters). */
static int only_null(json_object *body, const char *what, const char *key, char *err)
{
	if (get(body, key))
		return fail(err, "%s: '%s' is not supported by Banyan (use null or leave it out)",
			    what, key);
	return 0;
}

/* A string field that must be one of @choices (NULL-terminated). */
static int get_choice(json_object *body, const char *what, const char *key,
		      const char *const *choices, char *out, size_t outlen, char *err)
{
	const char *s;
	int ret = get_str(body, what, key, 32, &s, err);
	unsigned int i;

	if (ret < 0 || !s)
		return ret;
	for (i = 0; choices[i]; i++)
		if (strcmp(s, choices[i]) == 0) {
			snprintf(out, outlen, "%s", s);
			return 0;
		}
	return fail(err, "%s: field '%s' has an unsupported value '%s'", what, key, s);
}

/* Firecracker's resource ids (1..64 characters, alphanumeric or '_'), and '-'. */
static int check_id(const char *what, const char *id, char *err)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > VMCFG_MAX_ID)
		return fail(err, "%s: the id must have 1 to %d characters", what, VMCFG_MAX_ID);
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
			return fail(err, "%s: invalid id '%s' (only letters, digits, '_' and '-')",
				    what, id);
	return 0;
}

/* strdup that tolerates NULL; *@ok turns false when memory runs out. */
static char *dup_or_null(const char *s, bool *ok)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

static void replace_str(char **dst, char *src)
{
	free(*dst);
	*dst = src;
}

void vmcfg_init(struct vmcfg *c)
{
	memset(c, 0, sizeof(*c));
	c->vcpu_count = VMCFG_DEFAULT_VCPUS;
	c->mem_size_mib = VMCFG_DEFAULT_MEM_MIB;
}

static void drive_free(struct vmcfg_drive *d)
{
	free(d->drive_id);
	free(d->path_on_host);
	free(d->partuuid);
	free(d->overlay_path);
	memset(d, 0, sizeof(*d));
}

static void net_free(struct vmcfg_net *n)
{
	free(n->iface_id);
	free(n->host_dev_name);
	free(n->guest_mac);
	memset(n, 0, sizeof(*n));
}

void vmcfg_free(struct vmcfg *c)
{
	unsigned int i;

	free(c->kernel_image_path);
	free(c->initrd_path);
	free(c->boot_args);
	for (i = 0; i < c->nmodules; i++) {
		free(c->modules[i].path);
		free(c->modules[i].cmdline);
	}
	for (i = 0; i < c->ndrives; i++)
		drive_free(&c->drives[i]);
	for (i = 0; i < c->nnets; i++)
		net_free(&c->nets[i]);
	for (i = 0; i < c->nfw_files; i++) {
		free(c->fw_files[i].name);
		free(c->fw_files[i].file);
		free(c->fw_files[i].string);
	}
	free(c->vsock_uds_path);
	free(c->log_path);
	free(c->metrics_path);
	free(c->cmdline);
	free(c->cpu_template);
	for (i = 0; i < c->nretired; i++)
		free(c->retired[i]);
	free(c->retired);
	memset(c, 0, sizeof(*c));
}

/* Replace every string of @c by a copy of its own; false when memory runs out. */
static bool dup_strings(struct vmcfg *c)
{
	char **strs[4 + 2 * VM_MAX_MODULES + 3 * VM_MAX_FW_CFG_FILES + 4 * VM_MAX_DISKS +
		    3 * VM_MAX_NETS + 3];
	unsigned int n = 0, i;
	bool ok = true;

	strs[n++] = &c->kernel_image_path;
	strs[n++] = &c->initrd_path;
	strs[n++] = &c->boot_args;
	strs[n++] = &c->cmdline;
	for (i = 0; i < c->nmodules; i++) {
		strs[n++] = &c->modules[i].path;
		strs[n++] = &c->modules[i].cmdline;
	}
	for (i = 0; i < c->nfw_files; i++) {
		strs[n++] = &c->fw_files[i].name;
		strs[n++] = &c->fw_files[i].file;
		strs[n++] = &c->fw_files[i].string;
	}
	for (i = 0; i < c->ndrives; i++) {
		strs[n++] = &c->drives[i].drive_id;
		strs[n++] = &c->drives[i].path_on_host;
		strs[n++] = &c->drives[i].partuuid;
		strs[n++] = &c->drives[i].overlay_path;
	}
	for (i = 0; i < c->nnets; i++) {
		strs[n++] = &c->nets[i].iface_id;
		strs[n++] = &c->nets[i].host_dev_name;
		strs[n++] = &c->nets[i].guest_mac;
	}
	strs[n++] = &c->vsock_uds_path;
	strs[n++] = &c->log_path;
	strs[n++] = &c->metrics_path;
	for (i = 0; i < n; i++)
		*strs[i] = dup_or_null(*strs[i], &ok);
	return ok;
}

int vmcfg_copy(struct vmcfg *dst, const struct vmcfg *src)
{
	*dst = *src;
	dst->retired = NULL; /* the source's to free; nothing of a copy points at them */
	dst->nretired = 0;
	if (src->cpu_template) {
		dst->cpu_template = malloc(sizeof(*dst->cpu_template));
		if (dst->cpu_template)
			*dst->cpu_template = *src->cpu_template;
	}
	if (dup_strings(dst) && (dst->cpu_template || !src->cpu_template))
		return 0;
	vmcfg_free(dst);
	vmcfg_init(dst);
	return -ENOMEM;
}

int vmcfg_parse(const char *buf, size_t len, json_object **out, char *err)
{
	struct json_tokener *tok;
	json_object *obj;
	enum json_tokener_error jerr;
	size_t used;

	*out = NULL;
	if (len > VMCFG_MAX_BODY)
		return fail(err, "the body is larger than %d bytes", VMCFG_MAX_BODY);
	if (len == 0)
		return fail(err, "the body is empty; a JSON object was expected");
	tok = json_tokener_new_ex(VMCFG_MAX_DEPTH);
	if (!tok)
		return fail(err, "out of memory");
	/* JSON is UTF-8 (RFC 8259): other bytes would come back in replies and GET /vm/config. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	if (!obj && jerr == json_tokener_continue)
		jerr = json_tokener_error_parse_eof;
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		json_object_put(obj);
		return fail(err, "malformed JSON at byte %zu: %s", used,
			    json_tokener_error_desc(jerr));
	}
	while (used < len && isspace((unsigned char)buf[used]))
		used++;
	if (used < len) {
		json_object_put(obj);
		return fail(err, "malformed JSON: unexpected data after the value at byte %zu",
			    used);
	}
	*out = obj;
	return 0;
}

static const struct field machine_fields[] = {
    {"vcpu_count", json_type_int, true},
    {"mem_size_mib", json_type_int, true},
    {"smt", json_type_boolean, false},
    {"track_dirty_pages", json_type_boolean, false},
    {"cpu_template", json_type_string, false},
    {"huge_pages", json_type_string, false},
    {"on_reboot", json_type_string, false},
    {"no_irqchip", json_type_boolean, false},
    {"mem_mergeable", json_type_boolean, false}, /* Banyan: --memory ...,mergeable */
    {"mem_prefault", json_type_boolean, false},	 /* Banyan: --memory ...,prefault */
    {"mem_shared", json_type_boolean, false},	 /* Banyan: --memory ...,shared */
    {"cpu_affinity", json_type_object, false},	 /* Banyan: --cpu-affinity */
    {NULL, 0, false},
};

/*
 * Banyan's fields of machine-config: what a guest reboot does, and no
 * irqchip (tests). Absent, they keep their value even on PUT: Firecracker's
 * clients never send them, and must not undo --on-reboot.
 */
static int machine_banyan(struct vmcfg *c, json_object *body, char *err)
{
	static const char *const actions[] = {"Exit", "Restart", NULL};
	char action[8] = "";
	bool no_irqchip = c->no_irqchip;
	int ret =
	    get_choice(body, "machine-config", "on_reboot", actions, action, sizeof(action), err);

	if (ret < 0)
		return ret;
	get_bool(body, "no_irqchip", &no_irqchip);
	if (action[0])
		c->on_reboot = strcmp(action, "Restart") == 0 ? ON_REBOOT_RESTART : ON_REBOOT_EXIT;
	c->no_irqchip = no_irqchip;
	return 0;
}

/* "cpu_affinity": {"vcpu": "0-1", "vcpu1": "3", "io": "2"} as the spec "vcpu=0-1;vcpu1=3;io=2". */
static int affinity_spec(json_object *o, char *spec, char *err)
{
	size_t n = 0;

	spec[0] = '\0';
	json_object_object_foreach(o, role, list)
	{
		if (!json_object_is_type(list, json_type_string))
			return fail(err, "machine-config: cpu_affinity: %s must be a string", role);
		n += (size_t)snprintf(spec + n, n < CPU_AFFINITY_LEN ? CPU_AFFINITY_LEN - n : 0,
				      "%s%s=%s", n ? ";" : "", role, json_object_get_string(list));
		if (n >= CPU_AFFINITY_LEN)
			return fail(err,
				    "machine-config: cpu_affinity is longer than %d characters",
				    CPU_AFFINITY_LEN - 1);
	}
	return 0;
}

/*
 * Banyan's placement of threads on host CPUs (--cpu-affinity). Absent, it
 * keeps its value, which must still fit @vcpus (a PATCH may lower it).
 */
static int machine_affinity(struct vmcfg *c, json_object *body, uint64_t vcpus, char *err)
{
	json_object *o = get(body, "cpu_affinity");
	char spec[CPU_AFFINITY_LEN], why[VMCFG_ERR_LEN];
	int ret = 0;

	snprintf(spec, sizeof(spec), "%s", c->cpu_affinity);
	if (o)
		ret = affinity_spec(o, spec, err);
	if (ret == 0 && cpu_affinity_check(spec, (unsigned int)vcpus, why, sizeof(why)) < 0)
		ret = fail(err, "machine-config: cpu_affinity: %s", why);
	if (ret == 0)
		memcpy(c->cpu_affinity, spec, sizeof(spec));
	return ret;
}

static json_object *affinity_to_json(const char *spec)
{
	json_object *o = json_object_new_object();
	char buf[CPU_AFFINITY_LEN], *save = NULL, *eq;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *e = strtok_r(buf, ";", &save); o && e; e = strtok_r(NULL, ";", &save)) {
		eq = strchr(e, '=');
		if (eq) {
			*eq = '\0';
			json_object_object_add(o, e, json_object_new_string(eq + 1));
		}
	}
	return o;
}

/*
 * A named CPU template, or "None": replaces whatever template was set
 * before (Firecracker: the last of machine-config's cpu_template and
 * /cpu-config wins).
 */
static int set_named_template(struct vmcfg *c, const char *name, char *err)
{
	struct cpu_template *t;

	if (strcmp(name, "None") == 0) {
		free(c->cpu_template);
		c->cpu_template = NULL;
		return 0;
	}
	t = malloc(sizeof(*t));
	if (!t)
		return fail(err, "out of memory");
	if (cpu_template_named(name, t) < 0) {
		free(t);
		return fail(err,
			    "machine-config: cpu_template: no template '%s' (Banyan has None, %s; "
			    "Firecracker's T2, C3, ... are not provided: use a custom template)",
			    name, cpu_template_names());
	}
	free(c->cpu_template);
	c->cpu_template = t;
	return 0;
}

/* Firecracker's "huge_pages": "None" or "2M" (hugetlbfs pages of 2 MiB); absent: *@huge kept. */
static int machine_huge_pages(json_object *body, bool *huge, char *err)
{
	static const char *const sizes[] = {"None", "2M", NULL};
	char size[8] = "";
	int ret = get_choice(body, "machine-config", "huge_pages", sizes, size, sizeof(size), err);

	if (ret == 0 && size[0])
		*huge = strcmp(size, "2M") == 0;
	return ret;
}

/*
 * The memory backing's rules, checked with the size it will have: huge
 * pages need a whole number of them, and KSM never merges hugetlb pages,
 * so asking for both would silently give one. Banyan's "mem_mergeable"
 * and "mem_prefault" keep their value when absent, as machine_banyan's.
 */
static int machine_memory_backing(json_object *body, uint64_t mib, bool huge, bool *mergeable,
				  bool *prefault, bool *shared, char *err)
{
	get_bool(body, "mem_mergeable", mergeable);
	get_bool(body, "mem_prefault", prefault);
	get_bool(body, "mem_shared", shared);
	if (*shared && (huge || *mergeable))
		return fail(err,
			    "machine-config: mem_shared (a memfd) goes with neither huge_pages "
			    "nor mem_mergeable (KSM merges only private pages)");
	if (huge && mib % 2)
		return fail(err,
			    "machine-config: huge_pages 2M needs mem_size_mib to be a multiple "
			    "of 2 (%llu MiB is not)",
			    (unsigned long long)mib);
	if (huge && *mergeable)
		return fail(err, "machine-config: mem_mergeable cannot apply to huge pages "
				 "(KSM merges only ordinary pages)");
	return 0;
}

int vmcfg_machine(struct vmcfg *c, json_object *body, bool patch, char *err)
{
	const char *what = "machine-config";
	uint64_t vcpus = patch ? c->vcpu_count : 0, mem = patch ? c->mem_size_mib : 0;
	bool smt = patch ? c->smt : false, dirty = patch ? c->track_dirty_pages : false;
	bool huge = patch ? c->huge_pages_2m : false;
	bool mergeable = c->mem_mergeable, prefault = c->mem_prefault, shared = c->mem_shared;
	char scratch_err[VMCFG_ERR_LEN];
	int ret = check_object(body, what, machine_fields, patch, err);

	if (ret == 0)
		ret = get_uint(body, what, "vcpu_count", 1, VM_MAX_CPUS, &vcpus, err);
	if (ret == 0)
		ret = get_uint(body, what, "mem_size_mib", VMCFG_MEM_MIN, VMCFG_MEM_MAX, &mem, err);
	if (ret == 0 && get(body, "mem_size_mib") && vmcfg_check_memory(mem, scratch_err) < 0)
		ret = fail(err, "%s: mem_size_mib: %s", what, scratch_err);
	if (ret == 0)
		ret = machine_huge_pages(body, &huge, err);
	if (ret < 0)
		return ret;
	get_bool(body, "smt", &smt);
	get_bool(body, "track_dirty_pages", &dirty);
	if (smt)
		return fail(err, "%s: smt (2 threads per core) is not supported by Banyan", what);
	ret = machine_memory_backing(body, mem, huge, &mergeable, &prefault, &shared, err);
	if (ret == 0)
		ret = machine_banyan(c, body, err);
	if (ret == 0)
		ret = machine_affinity(c, body, vcpus, err);
	if (ret == 0 && get(body, "cpu_template"))
		ret = set_named_template(c, json_object_get_string(get(body, "cpu_template")), err);
	if (ret < 0)
		return ret;
	c->vcpu_count = (unsigned int)vcpus;
	c->mem_size_mib = mem;
	c->huge_pages_2m = huge;
	c->mem_mergeable = mergeable;
	c->mem_prefault = prefault;
	c->mem_shared = shared;
	c->smt = smt;
	c->track_dirty_pages = dirty;
	return 0;
}

/* The start of a /proc file, NUL-terminated (never blocks); 0 or -errno. */
static int read_proc(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	return 0;
}

/* CommitLimit of /proc/meminfo in MiB; 0 when unknown. */
static uint64_t commit_limit_mib(void)
{
	char buf[4096];
	const char *p;

	if (read_proc("/proc/meminfo", buf, sizeof(buf)) < 0 || !(p = strstr(buf, "CommitLimit:")))
		return 0;
	return strtoull(p + strlen("CommitLimit:"), NULL, 10) >> 10;
}

/*
 * The most one allocation can get under the host's overcommit policy, in
 * MiB (what mmap without MAP_NORESERVE would allow); 0: no limit.
 */
static uint64_t host_memory_mib(int *mode)
{
	struct sysinfo si;
	char buf[16];

	*mode = read_proc("/proc/sys/vm/overcommit_memory", buf, sizeof(buf)) == 0 ? atoi(buf) : 0;
	if (*mode == 1)
		return 0;
	if (*mode == 2)
		return commit_limit_mib();
	if (sysinfo(&si) < 0)
		return 0;
	return ((uint64_t)si.totalram + si.totalswap) * si.mem_unit >> 20;
}

int vmcfg_check_memory(uint64_t mib, char *err)
{
	uint64_t host;
	int mode;

	if (mib < VMCFG_MEM_MIN || mib > VMCFG_MEM_MAX)
		return fail(err, "%llu MiB is out of range (%llu MiB to %llu MiB)",
			    (unsigned long long)mib, VMCFG_MEM_MIN, VMCFG_MEM_MAX);
	host = host_memory_mib(&mode);
	if (host && mib > host)
		return fail(err,
			    "%llu MiB is more than this host can ever give a guest: %llu MiB of "
			    "%s (vm.overcommit_memory=%d; set it to 1 to overcommit on purpose)",
			    (unsigned long long)mib, (unsigned long long)host,
			    mode == 2 ? "CommitLimit" : "RAM and swap", mode);
	return 0;
}

static const struct field boot_fields[] = {
    {"kernel_image_path", json_type_string, true},
    {"initrd_path", json_type_string, false},
    {"boot_args", json_type_string, false},
    {"modules", json_type_array, false},
    {NULL, 0, false},
};

static const struct field module_fields[] = {
    {"path", json_type_string, true},
    {"cmdline", json_type_string, false},
    {NULL, 0, false},
};

static void modules_free(struct vmcfg_module *m, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		free(m[i].path);
		free(m[i].cmdline);
	}
}

/* Banyan's "modules" (multiboot): into @out, all or nothing. */
static int get_modules(json_object *body, struct vmcfg_module *out, unsigned int *n, char *err)
{
	const char *what = "boot-source: modules", *path, *cmd;
	json_object *arr = get(body, "modules");
	size_t i, len = arr ? json_object_array_length(arr) : 0;
	bool ok = true;
	int ret = 0;

	*n = 0;
	if (len > VM_MAX_MODULES)
		return fail(err, "%s: at most %d modules", what, VM_MAX_MODULES);
	for (i = 0; i < len && ret == 0; i++) {
		json_object *m = json_object_array_get_idx(arr, i);

		ret = check_object(m, what, module_fields, false, err);
		if (ret == 0)
			ret = get_str(m, what, "path", VMCFG_MAX_PATH, &path, err);
		if (ret == 0)
			ret = get_str(m, what, "cmdline", VMCFG_MAX_ARGS, &cmd, err);
		if (ret == 0)
			ret = path_kind(what, "path", path, FILE_KIND_REG, err);
		if (ret == 0) {
			out[i].path = dup_or_null(path, &ok);
			out[i].cmdline = dup_or_null(cmd, &ok);
			*n = (unsigned int)i + 1;
			ret = ok ? 0 : fail(err, "out of memory");
		}
	}
	if (ret < 0)
		modules_free(out, *n);
	return ret;
}

int vmcfg_boot_source(struct vmcfg *c, json_object *body, char *err)
{
	const char *what = "boot-source", *kernel, *initrd = NULL, *args = NULL;
	struct vmcfg_module mods[VM_MAX_MODULES] = {{0}};
	unsigned int nmods = 0;
	char *k, *i, *a;
	bool ok = true;
	int ret = check_object(body, what, boot_fields, false, err);

	if (ret == 0)
		ret = get_str(body, what, "kernel_image_path", VMCFG_MAX_PATH, &kernel, err);
	if (ret == 0)
		ret = get_str(body, what, "initrd_path", VMCFG_MAX_PATH, &initrd, err);
	if (ret == 0)
		ret = get_str(body, what, "boot_args", VMCFG_MAX_ARGS, &args, err);
	if (ret == 0)
		ret = path_kind(what, "kernel_image_path", kernel, FILE_KIND_REG, err);
	if (ret == 0)
		ret = path_kind(what, "initrd_path", initrd, FILE_KIND_REG, err);
	if (ret == 0 && initrd && get(body, "modules"))
		ret = fail(err, "%s: 'initrd_path' and 'modules' exclude each other", what);
	if (ret < 0)
		return ret;
	if (!kernel)
		return fail(err, "%s: field 'kernel_image_path' must be a string", what);
	ret = get_modules(body, mods, &nmods, err);
	if (ret < 0)
		return ret;
	k = dup_or_null(kernel, &ok);
	i = dup_or_null(initrd, &ok);
	a = dup_or_null(args, &ok);
	if (!ok) {
		free(k);
		free(i);
		free(a);
		modules_free(mods, nmods);
		return fail(err, "out of memory");
	}
	modules_free(c->modules, c->nmodules);
	memcpy(c->modules, mods, sizeof(mods));
	c->nmodules = nmods;
	replace_str(&c->kernel_image_path, k);
	replace_str(&c->initrd_path, i);
	replace_str(&c->boot_args, a);
	return 0;
}

/* --- rate limiters (Firecracker's RateLimiter and TokenBucket objects) --- */

static const struct field bucket_fields[] = {
    {"size", json_type_int, true},
    {"one_time_burst", json_type_int, false},
    {"refill_time", json_type_int, true},
    {NULL, 0, false},
};

static const struct field limiter_fields[] = {
    {"bandwidth", json_type_object, false},
    {"ops", json_type_object, false},
    {NULL, 0, false},
};

/* One TokenBucket object @o (NULL: none) into *@b, checked (util/token_bucket.h). */
static int bucket_from_json(json_object *o, const char *what, struct tb_config *b, char *err)
{
	struct tb_config c = {0};
	const char *why;
	int ret;

	if (!o) {
		*b = c;
		return 0;
	}
	ret = check_object(o, what, bucket_fields, false, err);
	if (ret == 0)
		ret = get_uint(o, what, "size", 0, TB_SIZE_MAX, &c.size, err);
	if (ret == 0)
		ret = get_uint(o, what, "one_time_burst", 0, TB_SIZE_MAX, &c.one_time_burst, err);
	if (ret == 0)
		ret = get_uint(o, what, "refill_time", 0, TB_REFILL_MS_MAX, &c.refill_ms, err);
	if (ret == 0 && (why = tb_config_check(&c)))
		ret = fail(err, "%s: %s", what, why);
	if (ret == 0)
		*b = c;
	return ret;
}

int vmcfg_rate_limiter(json_object *body, const char *what, const char *key, bool patch,
		       struct rl_config *out, char *err)
{
	json_object *o = get(body, key);
	struct rl_config c = patch ? *out : (struct rl_config){0};
	char w[96];
	int ret;

	if (!o) {
		*out = c; /* null or absent: none, or unchanged by a PATCH */
		return 0;
	}
	snprintf(w, sizeof(w), "%s: %s", what, key);
	ret = check_object(o, w, limiter_fields, false, err);
	if (ret < 0)
		return ret;
	snprintf(w, sizeof(w), "%s: %s.bandwidth", what, key);
	if (!patch || get(o, "bandwidth"))
		ret = bucket_from_json(get(o, "bandwidth"), w, &c.bw, err);
	snprintf(w, sizeof(w), "%s: %s.ops", what, key);
	if (ret == 0 && (!patch || get(o, "ops")))
		ret = bucket_from_json(get(o, "ops"), w, &c.ops, err);
	if (ret == 0)
		*out = c;
	return ret;
}

static json_object *bucket_to_json(const struct tb_config *b)
{
	json_object *o;

	if (!b->size || !(o = json_object_new_object()))
		return NULL;
	json_object_object_add(o, "size", json_object_new_int64((int64_t)b->size));
	json_object_object_add(o, "one_time_burst",
			       json_object_new_int64((int64_t)b->one_time_burst));
	json_object_object_add(o, "refill_time", json_object_new_int64((int64_t)b->refill_ms));
	return o;
}

json_object *vmcfg_rate_limiter_to_json(const struct rl_config *c)
{
	json_object *o;

	if (!rl_config_enabled(c) || !(o = json_object_new_object()))
		return NULL;
	json_object_object_add(o, "bandwidth", bucket_to_json(&c->bw));
	json_object_object_add(o, "ops", bucket_to_json(&c->ops));
	return o;
}

/* --- drives --- */

static const struct field drive_fields[] = {
    {"drive_id", json_type_string, true},
    {"path_on_host", json_type_string, true},
    {"is_root_device", json_type_boolean, true},
    {"is_read_only", json_type_boolean, false},
    {"partuuid", json_type_string, false},
    {"cache_type", json_type_string, false},
    {"io_engine", json_type_string, false},
    {"rate_limiter", json_type_object, false},
    {"socket", json_type_string, false},
    {"overlay_path", json_type_string, false},
    {NULL, 0, false},
};

static const struct field drive_patch_fields[] = {
    {"drive_id", json_type_string, true},
    {"path_on_host", json_type_string, false},
    {"rate_limiter", json_type_object, false},
    {NULL, 0, false},
};

static struct vmcfg_drive *find_drive(struct vmcfg *c, const char *id)
{
	unsigned int i;

	for (i = 0; i < c->ndrives; i++)
		if (strcmp(c->drives[i].drive_id, id) == 0)
			return &c->drives[i];
	return NULL;
}

/* The {id} of the path and the id in the body must agree. */
static int check_body_id(json_object *body, const char *key, const char *id, const char *what,
			 char *err)
{
	const char *body_id;
	int ret = get_str(body, what, key, VMCFG_MAX_ID, &body_id, err);

	if (ret < 0)
		return ret;
	if (!body_id)
		return fail(err, "%s: missing required field '%s'", what, key);
	ret = check_id(what, body_id, err);
	if (ret == 0 && id && strcmp(id, body_id) != 0)
		return fail(err, "%s: the id in the path ('%s') does not match '%s' in the body",
			    what, id, body_id);
	return ret;
}

/* Fill @d from a PUT body already checked against drive_fields. */
static int drive_from_body(struct vmcfg_drive *d, json_object *body, char *err)
{
	static const char *const caches[] = {"Unsafe", "Writeback", "Direct", NULL};
	static const char *const engines[] = {"Sync", "Async", NULL};
	const char *what = "drives", *path, *partuuid, *overlay = NULL;
	bool ok = true;
	int ret = get_str(body, what, "path_on_host", VMCFG_MAX_PATH, &path, err);

	if (ret == 0)
		ret = get_str(body, what, "partuuid", 64, &partuuid, err);
	if (ret == 0)
		ret = get_str(body, what, "overlay_path", VMCFG_MAX_PATH, &overlay, err);
	snprintf(d->cache_type, sizeof(d->cache_type), "Unsafe");
	snprintf(d->io_engine, sizeof(d->io_engine), "Sync");
	if (ret == 0)
		ret = get_choice(body, what, "cache_type", caches, d->cache_type,
				 sizeof(d->cache_type), err);
	if (ret == 0)
		ret = get_choice(body, what, "io_engine", engines, d->io_engine,
				 sizeof(d->io_engine), err);
	if (ret == 0)
		ret = vmcfg_rate_limiter(body, what, "rate_limiter", false, &d->rate_limiter, err);
	if (ret == 0)
		ret = only_null(body, what, "socket", err);
	if (ret == 0)
		ret = path_kind(what, "path_on_host", path, FILE_KIND_REG | FILE_KIND_BLK, err);
	if (ret == 0)
		ret = path_kind(what, "overlay_path", overlay, FILE_KIND_REG, err);
	if (ret < 0)
		return ret;
	if (!path)
		return fail(err, "%s: field 'path_on_host' must be a string", what);
	get_bool(body, "is_root_device", &d->is_root_device);
	get_bool(body, "is_read_only", &d->is_read_only);
	if (overlay && d->is_read_only)
		return fail(err, "%s: 'overlay_path' needs a writable drive (is_read_only false)",
			    what);
	d->drive_id = dup_or_null(json_object_get_string(get(body, "drive_id")), &ok);
	d->path_on_host = dup_or_null(path, &ok);
	d->partuuid = dup_or_null(partuuid, &ok);
	d->overlay_path = dup_or_null(overlay, &ok);
	return ok ? 0 : fail(err, "out of memory");
}

static int drive_put(struct vmcfg *c, json_object *body, char *err)
{
	struct vmcfg_drive d = {0}, *old;
	unsigned int i;
	int ret = drive_from_body(&d, body, err);

	old = ret == 0 ? find_drive(c, d.drive_id) : NULL;
	for (i = 0; ret == 0 && d.is_root_device && i < c->ndrives; i++)
		if (c->drives[i].is_root_device && &c->drives[i] != old)
			ret = fail(err, "drives: a root device already exists ('%s')",
				   c->drives[i].drive_id);
	if (ret == 0 && !old && c->ndrives == VM_MAX_DISKS)
		ret = fail(err, "drives: at most %d drives", VM_MAX_DISKS);
	if (ret < 0) {
		drive_free(&d);
		return ret;
	}
	if (old)
		drive_free(old);
	else
		old = &c->drives[c->ndrives++];
	*old = d;
	if (d.is_root_device) /* guest order: the root device is vda */
		for (; old > c->drives; old--) {
			d = old[-1];
			old[-1] = old[0];
			old[0] = d;
		}
	return 0;
}

static int drive_patch(struct vmcfg *c, const char *id, json_object *body, char *err)
{
	struct vmcfg_drive *d = find_drive(c, id);
	struct rl_config limit = d ? d->rate_limiter : (struct rl_config){0};
	const char *path;
	char *p;
	int ret = get_str(body, "drives", "path_on_host", VMCFG_MAX_PATH, &path, err);

	if (ret == 0)
		ret = vmcfg_rate_limiter(body, "drives", "rate_limiter", true, &limit, err);
	if (ret == 0)
		ret = path_kind("drives", "path_on_host", path, FILE_KIND_REG | FILE_KIND_BLK, err);
	if (ret < 0)
		return ret;
	if (!d)
		return fail(err, "drives: no drive '%s' to update", id);
	if (path) {
		p = strdup(path);
		if (!p)
			return fail(err, "out of memory");
		replace_str(&d->path_on_host, p);
	}
	d->rate_limiter = limit;
	return 0;
}

int vmcfg_drive_live(struct vmcfg *c, const char *id, json_object *body, int *index,
		     const char **path, struct rl_config *limit, char *err)
{
	int ret = check_object(body, "drives", drive_patch_fields, false, err);
	struct vmcfg_drive *d;

	if (ret == 0)
		ret = check_body_id(body, "drive_id", id, "drives", err);
	if (ret == 0)
		ret = get_str(body, "drives", "path_on_host", VMCFG_MAX_PATH, path, err);
	if (ret < 0)
		return ret;
	d = find_drive(c, json_object_get_string(get(body, "drive_id")));
	if (!d)
		return fail(err, "drives: no drive '%s' to update",
			    json_object_get_string(get(body, "drive_id")));
	*limit = d->rate_limiter;
	ret = vmcfg_rate_limiter(body, "drives", "rate_limiter", true, limit, err);
	*index = (int)(d - c->drives);
	return ret;
}

int vmcfg_drive_set_path(struct vmcfg *c, unsigned int index, const char *path)
{
	char *p = strdup(path), **r;

	r = realloc(c->retired, (c->nretired + 1) * sizeof(*r));
	if (!p || !r) {
		free(p);
		if (r)
			c->retired = r;
		return -ENOMEM;
	}
	c->retired = r;
	c->retired[c->nretired++] = c->drives[index].path_on_host;
	c->drives[index].path_on_host = p;
	return 0;
}

int vmcfg_drive(struct vmcfg *c, const char *id, json_object *body, bool patch, char *err)
{
	int ret =
	    check_object(body, "drives", patch ? drive_patch_fields : drive_fields, false, err);

	if (ret == 0)
		ret = check_body_id(body, "drive_id", id, "drives", err);
	if (ret < 0)
		return ret;
	if (patch)
		return drive_patch(c, json_object_get_string(get(body, "drive_id")), body, err);
	return drive_put(c, body, err);
}

static const struct field net_fields[] = {
    {"iface_id", json_type_string, true},	  {"host_dev_name", json_type_string, true},
    {"guest_mac", json_type_string, false},	  {"rx_rate_limiter", json_type_object, false},
    {"tx_rate_limiter", json_type_object, false}, {NULL, 0, false},
};

static const struct field net_patch_fields[] = {
    {"iface_id", json_type_string, true},
    {"rx_rate_limiter", json_type_object, false},
    {"tx_rate_limiter", json_type_object, false},
    {NULL, 0, false},
};

static bool mac_ok(const char *s)
{
	unsigned int i;

	if (strlen(s) != 17)
		return false;
	for (i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static struct vmcfg_net *find_net(struct vmcfg *c, const char *id)
{
	unsigned int i;

	for (i = 0; i < c->nnets; i++)
		if (strcmp(c->nets[i].iface_id, id) == 0)
			return &c->nets[i];
	return NULL;
}

/* Two interfaces (other than @self, being replaced) cannot share a TAP or a MAC. */
static int net_check_unique(const struct vmcfg *c, const struct vmcfg_net *self, const char *dev,
			    const char *mac, char *err)
{
	for (unsigned int i = 0; i < c->nnets; i++) {
		const struct vmcfg_net *n = &c->nets[i];

		if (n == self)
			continue;
		if (strcmp(n->host_dev_name, dev) == 0)
			return fail(err, "network-interfaces: host_dev_name '%s' is used twice",
				    dev);
		if (mac && n->guest_mac && strcasecmp(n->guest_mac, mac) == 0)
			return fail(err, "network-interfaces: guest_mac %s is used twice", mac);
	}
	return 0;
}

static int net_put(struct vmcfg *c, json_object *body, char *err)
{
	const char *what = "network-interfaces", *dev, *mac;
	struct vmcfg_net n = {0}, *old;
	uint8_t mac_bytes[6];
	bool ok = true;
	int ret = get_str(body, what, "host_dev_name", IFNAMSIZ - 1, &dev, err);

	if (ret == 0)
		ret = get_str(body, what, "guest_mac", 17, &mac, err);
	if (ret == 0 && mac && (!mac_ok(mac) || parse_mac(mac, mac_bytes) < 0))
		ret =
		    fail(err, "%s: guest_mac '%s' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)",
			 what, mac);
	if (ret == 0)
		ret = vmcfg_rate_limiter(body, what, "rx_rate_limiter", false, &n.rx_rate_limiter,
					 err);
	if (ret == 0)
		ret = vmcfg_rate_limiter(body, what, "tx_rate_limiter", false, &n.tx_rate_limiter,
					 err);
	if (ret < 0)
		return ret;
	if (!dev)
		return fail(err, "%s: field 'host_dev_name' must be a string", what);
	if (strpbrk(dev, " /:\t\n"))
		return fail(err,
			    "%s: host_dev_name '%s' is not an interface name (no spaces, '/' "
			    "or ':')",
			    what, dev);
	old = find_net(c, json_object_get_string(get(body, "iface_id")));
	if (!old && c->nnets == VM_MAX_NETS)
		return fail(err, "%s: at most %d interfaces", what, VM_MAX_NETS);
	ret = net_check_unique(c, old, dev, mac, err);
	if (ret < 0)
		return ret;
	n.iface_id = dup_or_null(json_object_get_string(get(body, "iface_id")), &ok);
	n.host_dev_name = dup_or_null(dev, &ok);
	n.guest_mac = dup_or_null(mac, &ok);
	if (!ok) {
		net_free(&n);
		return fail(err, "out of memory");
	}
	if (old) {
		n.mmds = old->mmds; /* still named by mmds-config */
		net_free(old);
	} else {
		old = &c->nets[c->nnets++];
	}
	*old = n;
	return 0;
}

/* PATCH: only the rate limiters change (a bucket left out keeps its value). */
static int net_patch(struct vmcfg *c, const char *id, json_object *body, char *err)
{
	const char *what = "network-interfaces";
	struct vmcfg_net *n = find_net(c, id);
	struct rl_config rx, tx;
	int ret;

	if (!n)
		return fail(err, "%s: no interface '%s' to update", what, id);
	rx = n->rx_rate_limiter;
	tx = n->tx_rate_limiter;
	ret = vmcfg_rate_limiter(body, what, "rx_rate_limiter", true, &rx, err);
	if (ret == 0)
		ret = vmcfg_rate_limiter(body, what, "tx_rate_limiter", true, &tx, err);
	if (ret < 0)
		return ret;
	n->rx_rate_limiter = rx;
	n->tx_rate_limiter = tx;
	return 0;
}

int vmcfg_net(struct vmcfg *c, const char *id, json_object *body, bool patch, char *err)
{
	const char *what = "network-interfaces";
	int ret = check_object(body, what, patch ? net_patch_fields : net_fields, false, err);

	if (ret == 0)
		ret = check_body_id(body, "iface_id", id, what, err);
	if (ret < 0)
		return ret;
	if (patch)
		return net_patch(c, json_object_get_string(get(body, "iface_id")), body, err);
	return net_put(c, body, err);
}

static const struct field vsock_fields[] = {
    {"guest_cid", json_type_int, true},
    {"uds_path", json_type_string, true},
    {"vsock_id", json_type_string, false},
    {NULL, 0, false},
};

int vmcfg_vsock(struct vmcfg *c, json_object *body, char *err)
{
	const char *path, *vid;
	uint64_t cid = 0;
	char *p;
	int ret = check_object(body, "vsock", vsock_fields, false, err);

	if (ret == 0)
		ret = get_uint(body, "vsock", "guest_cid", VIRTIO_VSOCK_CID_MIN,
			       VIRTIO_VSOCK_CID_MAX, &cid, err);
	if (ret == 0)
		ret = get_str(body, "vsock", "uds_path", VIRTIO_VSOCK_PATH_MAX, &path, err);
	if (ret == 0)
		ret = get_str(body, "vsock", "vsock_id", VMCFG_MAX_ID, &vid, err);
	if (ret < 0)
		return ret;
	if (!path)
		return fail(err, "vsock: field 'uds_path' must be a string");
	p = strdup(path);
	if (!p)
		return fail(err, "out of memory");
	replace_str(&c->vsock_uds_path, p);
	c->vsock_cid = (uint32_t)cid;
	c->has_vsock = true;
	return 0;
}

static const struct field entropy_fields[] = {
    {"rate_limiter", json_type_object, false},
    {NULL, 0, false},
};

int vmcfg_entropy(struct vmcfg *c, json_object *body, char *err)
{
	int ret = check_object(body, "entropy", entropy_fields, false, err);

	if (ret == 0)
		ret = vmcfg_rate_limiter(body, "entropy", "rate_limiter", false,
					 &c->entropy_rate_limiter, err);
	if (ret == 0)
		c->entropy = true;
	return ret;
}

static const struct field balloon_fields[] = {
    {"amount_mib", json_type_int, true},
    {"deflate_on_oom", json_type_boolean, true},
    {"stats_polling_interval_s", json_type_int, false},
    {"free_page_reporting", json_type_boolean, false}, /* Banyan */
    {NULL, 0, false},
};

/* 2^20 MiB: the largest guest (VM_MEM_MAX); the guest's own size is checked at start. */
#define BALLOON_MAX_MIB	     (VM_MEM_MAX >> 20)
#define BALLOON_MAX_INTERVAL 86400 /* a day */

int vmcfg_balloon(struct vmcfg *c, json_object *body, char *err)
{
	struct balloon_config b = {.enabled = true, .reporting = true};
	uint64_t mib = 0, secs = 0;
	int ret = check_object(body, "balloon", balloon_fields, false, err);

	if (ret == 0)
		ret = get_uint(body, "balloon", "amount_mib", 0, BALLOON_MAX_MIB, &mib, err);
	if (ret == 0)
		ret = get_uint(body, "balloon", "stats_polling_interval_s", 0, BALLOON_MAX_INTERVAL,
			       &secs, err);
	if (ret < 0)
		return ret;
	get_bool(body, "deflate_on_oom", &b.deflate_on_oom);
	get_bool(body, "free_page_reporting", &b.reporting);
	b.amount_mib = (uint32_t)mib;
	b.stats_interval_s = (uint32_t)secs;
	c->balloon = b;
	return 0;
}

static const struct field balloon_patch_fields[] = {
    {"amount_mib", json_type_int, true},
    {NULL, 0, false},
};

static const struct field balloon_stats_fields[] = {
    {"stats_polling_interval_s", json_type_int, true},
    {NULL, 0, false},
};

int vmcfg_balloon_patch(const struct vmcfg *c, json_object *body, bool stats, uint32_t *value,
			char *err)
{
	const char *what = stats ? "balloon statistics" : "balloon";
	const char *key = stats ? "stats_polling_interval_s" : "amount_mib";
	uint64_t v = 0, max = stats ? BALLOON_MAX_INTERVAL : c->mem_size_mib;
	int ret;

	if (!c->balloon.enabled)
		return fail(err, "no balloon device is configured");
	ret = check_object(body, what, stats ? balloon_stats_fields : balloon_patch_fields, false,
			   err);
	if (ret == 0)
		ret = get_uint(body, what, key, 0, max, &v, err);
	if (ret < 0)
		return ret;
	if (stats && (v == 0) != (c->balloon.stats_interval_s == 0))
		return fail(err, "balloon statistics: cannot enable or disable statistics after "
				 "boot (the statistics queue is set at boot)");
	*value = (uint32_t)v;
	return 0;
}

json_object *vmcfg_balloon_to_json(const struct vmcfg *c)
{
	json_object *o;

	if (!c->balloon.enabled || !(o = json_object_new_object()))
		return NULL;
	json_object_object_add(o, "amount_mib", json_object_new_int64(c->balloon.amount_mib));
	json_object_object_add(o, "deflate_on_oom",
			       json_object_new_boolean(c->balloon.deflate_on_oom));
	json_object_object_add(o, "stats_polling_interval_s",
			       json_object_new_int64(c->balloon.stats_interval_s));
	json_object_object_add(o, "free_page_reporting",
			       json_object_new_boolean(c->balloon.reporting));
	return o;
}

static const struct field device_fields[] = {
    {"type", json_type_string, true},
    {"iobase", json_type_int, false},
    {"iosize", json_type_int, false},
    {NULL, 0, false},
};

static const char *const device_types[] = {"debug-exit", "testdev", "fw-cfg", "boot-timer", NULL};

/* iobase and iosize are debug-exit's: the port and how many (1, 2 or 4). */
static int device_ports(json_object *body, struct vmcfg_device *d, char *err)
{
	uint64_t base = 0xf4, size = 1;
	int ret = get_uint(body, "devices", "iobase", 0, 0xfffc, &base, err);

	if (ret == 0)
		ret = get_uint(body, "devices", "iosize", 1, 4, &size, err);
	if (ret == 0 && size == 3)
		ret = fail(err, "devices: 'iosize' must be 1, 2 or 4");
	if (ret == 0 && strcmp(d->type, "debug-exit") &&
	    (get(body, "iobase") || get(body, "iosize")))
		ret = fail(err, "devices: %s has no 'iobase' or 'iosize'", d->type);
	d->iobase = (uint32_t)base;
	d->iosize = (uint32_t)size;
	return ret;
}

static bool has_device(const struct vmcfg *c, const char *type)
{
	for (unsigned int i = 0; i < c->ndevices; i++)
		if (strcmp(c->devices[i].type, type) == 0)
			return true;
	return false;
}

int vmcfg_device(struct vmcfg *c, json_object *body, char *err)
{
	struct vmcfg_device d = {.type = ""};
	int ret = check_object(body, "devices", device_fields, false, err);

	if (ret == 0)
		ret =
		    get_choice(body, "devices", "type", device_types, d.type, sizeof(d.type), err);
	if (ret == 0)
		ret = device_ports(body, &d, err);
	/* fw-cfg comes with the first fw_cfg file too: asking for it again is no error. */
	if (ret == 0 && strcmp(d.type, "fw-cfg") == 0 && has_device(c, "fw-cfg"))
		return 0;
	for (unsigned int i = 0; ret == 0 && i < c->ndevices; i++)
		if (strcmp(c->devices[i].type, d.type) == 0)
			ret = fail(err, "devices: %s is already configured", d.type);
	if (ret == 0 && c->ndevices == VM_MAX_EXTRA_DEVICES)
		ret = fail(err, "devices: at most %d", VM_MAX_EXTRA_DEVICES);
	if (ret == 0)
		c->devices[c->ndevices++] = d;
	return ret;
}

static const struct field fw_file_fields[] = {
    {"name", json_type_string, true},
    {"file", json_type_string, false},
    {"string", json_type_string, false},
    {NULL, 0, false},
};

static int fw_file_check(const struct vmcfg *c, json_object *body, const char **name, char *err)
{
	const char *what = "fw_cfg_files", *file, *str;
	int ret = check_object(body, what, fw_file_fields, false, err);

	if (ret == 0)
		ret = get_str(body, what, "name", 55, name, err);
	if (ret == 0)
		ret = get_str(body, what, "file", VMCFG_MAX_PATH, &file, err);
	if (ret == 0)
		ret = get_str(body, what, "string", VMCFG_MAX_ARGS, &str, err);
	if (ret == 0 && !file == !str)
		ret = fail(err, "%s: give one of 'file' and 'string'", what);
	if (ret == 0 && strncmp(*name, "opt/", 4))
		ret = fail(err, "%s: name '%s' must start with opt/", what, *name);
	for (unsigned int i = 0; ret == 0 && i < c->nfw_files; i++)
		if (strcmp(c->fw_files[i].name, *name) == 0)
			ret = fail(err, "%s: '%s' given twice", what, *name);
	if (ret == 0 && c->nfw_files == VM_MAX_FW_CFG_FILES)
		ret = fail(err, "%s: at most %d", what, VM_MAX_FW_CFG_FILES);
	if (ret == 0 && !has_device(c, "fw-cfg") && c->ndevices == VM_MAX_EXTRA_DEVICES)
		ret = fail(err, "devices: at most %d", VM_MAX_EXTRA_DEVICES);
	return ret;
}

int vmcfg_fw_cfg_file(struct vmcfg *c, json_object *body, char *err)
{
	struct vmcfg_fw_file f;
	const char *name;
	bool ok = true;
	int ret = fw_file_check(c, body, &name, err);

	if (ret < 0)
		return ret;
	f.name = dup_or_null(name, &ok);
	f.file = dup_or_null(json_object_get_string(get(body, "file")), &ok);
	f.string = dup_or_null(json_object_get_string(get(body, "string")), &ok);
	if (!ok) {
		free(f.name);
		free(f.file);
		free(f.string);
		return fail(err, "out of memory");
	}
	c->fw_files[c->nfw_files++] = f;
	if (!has_device(c, "fw-cfg"))
		c->devices[c->ndevices++] = (struct vmcfg_device){.type = "fw-cfg"};
	return 0;
}

static int fw_file_put(struct vmcfg *c, const char *id, json_object *body, bool patch, char *err)
{
	(void)id;
	(void)patch;
	return vmcfg_fw_cfg_file(c, body, err);
}

static json_object *fw_files_to_json(const struct vmcfg *c)
{
	json_object *arr = json_object_new_array();

	for (unsigned int i = 0; arr && i < c->nfw_files; i++) {
		const struct vmcfg_fw_file *f = &c->fw_files[i];
		json_object *o = json_object_new_object();

		if (!o)
			break;
		json_object_object_add(o, "name", json_object_new_string(f->name));
		json_object_object_add(o, f->file ? "file" : "string",
				       json_object_new_string(f->file ? f->file : f->string));
		json_object_array_add(arr, o);
	}
	return arr;
}

static int device_put(struct vmcfg *c, const char *id, json_object *body, bool patch, char *err)
{
	(void)id;
	(void)patch;
	return vmcfg_device(c, body, err);
}

static json_object *devices_to_json(const struct vmcfg *c)
{
	json_object *arr = json_object_new_array();

	for (unsigned int i = 0; arr && i < c->ndevices; i++) {
		const struct vmcfg_device *d = &c->devices[i];
		json_object *o = json_object_new_object();

		if (!o)
			break;
		json_object_object_add(o, "type", json_object_new_string(d->type));
		if (strcmp(d->type, "debug-exit") == 0) {
			json_object_object_add(o, "iobase", json_object_new_int64(d->iobase));
			json_object_object_add(o, "iosize", json_object_new_int64(d->iosize));
		}
		json_object_array_add(arr, o);
	}
	return arr;
}

static const char *const log_levels[] = {"Error", "Warning", "Info", "Debug", "Trace", "Off", NULL};

int vmcfg_log_level(const char *name)
{
	/* Firecracker's levels onto Banyan's; Trace is Debug, Off keeps errors. */
	static const int map[] = {LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_DEBUG, LOG_ERROR};
	unsigned int i;

	for (i = 0; log_levels[i]; i++)
		if (strcasecmp(name, log_levels[i]) == 0)
			return map[i];
	return -1;
}

/* The logger's level, in any case as Firecracker takes it, kept in its canonical spelling. */
static int get_level(json_object *body, char *out, size_t outlen, char *err)
{
	const char *s;
	int ret = get_str(body, "logger", "level", 32, &s, err);
	unsigned int i;

	if (ret < 0 || !s)
		return ret;
	for (i = 0; log_levels[i]; i++)
		if (strcasecmp(s, log_levels[i]) == 0) {
			snprintf(out, outlen, "%s", log_levels[i]);
			return 0;
		}
	return fail(err,
		    "logger: field 'level' has an unsupported value '%s' (Error, Warning, "
		    "Info, Debug, Trace or Off, in any case)",
		    s);
}

static const struct field logger_fields[] = {
    {"log_path", json_type_string, false},    {"level", json_type_string, false},
    {"show_level", json_type_boolean, false}, {"show_log_origin", json_type_boolean, false},
    {"module", json_type_string, false},      {NULL, 0, false},
};

int vmcfg_logger(struct vmcfg *c, json_object *body, char *err)
{
	char level[8] = "";
	const char *path;
	char *p = NULL;
	int ret = check_object(body, "logger", logger_fields, false, err);

	if (ret == 0)
		ret = get_str(body, "logger", "log_path", VMCFG_MAX_PATH, &path, err);
	if (ret == 0)
		ret = get_level(body, level, sizeof(level), err);
	if (ret == 0)
		ret = only_null(body, "logger", "module", err);
	if (ret < 0)
		return ret;
	if (path) {
		p = strdup(path);
		if (!p)
			return fail(err, "out of memory");
	}
	replace_str(&c->log_path, p);
	snprintf(c->log_level, sizeof(c->log_level), "%s", level);
	return 0;
}

static const struct field metrics_fields[] = {
    {"metrics_path", json_type_string, true},
    {NULL, 0, false},
};

int vmcfg_metrics(struct vmcfg *c, json_object *body, char *err)
{
	const char *path;
	char *p;
	int ret = check_object(body, "metrics", metrics_fields, false, err);

	if (ret == 0)
		ret = get_str(body, "metrics", "metrics_path", VMCFG_MAX_PATH, &path, err);
	if (ret < 0)
		return ret;
	p = strdup(path);
	if (!p)
		return fail(err, "out of memory");
	replace_str(&c->metrics_path, p);
	return 0;
}

/* --- mmds-config --- */

static const struct field mmds_fields[] = {
    {"version", json_type_string, false},
    {"network_interfaces", json_type_array, true},
    {"ipv4_address", json_type_string, false},
    {"imds_compat", json_type_boolean, false},
    {NULL, 0, false},
};

static const char *const mmds_versions[] = {"V1", "V2", NULL};

/* Every element names a configured card; the list is not empty. */
static int mmds_ifaces_check(struct vmcfg *c, json_object *arr, char *err)
{
	size_t n = json_object_array_length(arr);

	if (n == 0)
		return fail(err, "mmds-config: the list of network interface IDs that allow "
				 "forwarding MMDS requests is empty");
	for (size_t i = 0; i < n; i++) {
		json_object *id = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(id, json_type_string) ||
		    !find_net(c, json_object_get_string(id)))
			return fail(err, "mmds-config: the list of network interface IDs "
					 "contains one that names no configured network "
					 "interface");
	}
	return 0;
}

/* A dotted IPv4 address in 169.254.0.0/16 (host byte order into *@out). */
static int mmds_address(json_object *body, uint32_t *out, char *err)
{
	const char *s;
	struct in_addr a;
	int ret = get_str(body, "mmds-config", "ipv4_address", 15, &s, err);

	*out = MMDS_DEFAULT_IPV4;
	if (ret < 0 || !s)
		return ret;
	if (inet_pton(AF_INET, s, &a) != 1)
		return fail(err, "mmds-config: ipv4_address '%s' is not an IPv4 address", s);
	*out = ntohl(a.s_addr);
	if ((*out >> 16) != 0xa9fe)
		return fail(err, "mmds-config: the MMDS IPv4 address is not link local "
				 "(169.254.0.0/16)");
	return 0;
}

int vmcfg_mmds_config(struct vmcfg *c, json_object *body, char *err)
{
	json_object *arr;
	char version[4] = "V1";
	uint32_t ip = 0;
	bool compat = false;
	int ret = check_object(body, "mmds-config", mmds_fields, false, err);

	if (ret == 0)
		ret = get_choice(body, "mmds-config", "version", mmds_versions, version,
				 sizeof(version), err);
	if (ret == 0)
		ret = mmds_ifaces_check(c, get(body, "network_interfaces"), err);
	if (ret == 0)
		ret = mmds_address(body, &ip, err);
	if (ret < 0)
		return ret;
	get_bool(body, "imds_compat", &compat);
	for (unsigned int i = 0; i < c->nnets; i++)
		c->nets[i].mmds = false;
	arr = get(body, "network_interfaces");
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		find_net(c, json_object_get_string(json_object_array_get_idx(arr, i)))->mmds = true;
	c->has_mmds = true;
	c->mmds_version = version[1] == '2' ? MMDS_V2 : MMDS_V1;
	c->mmds_ipv4 = ip;
	c->mmds_imds_compat = compat;
	return 0;
}

json_object *vmcfg_mmds_config_to_json(const struct vmcfg *c)
{
	json_object *o, *ifaces;
	struct in_addr a = {.s_addr = htonl(c->mmds_ipv4)};
	char ip[INET_ADDRSTRLEN] = "";

	if (!c->has_mmds || !(o = json_object_new_object()))
		return NULL;
	ifaces = json_object_new_array();
	for (unsigned int i = 0; ifaces && i < c->nnets; i++)
		if (c->nets[i].mmds)
			json_object_array_add(ifaces, json_object_new_string(c->nets[i].iface_id));
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	json_object_object_add(o, "version",
			       json_object_new_string(c->mmds_version == MMDS_V2 ? "V2" : "V1"));
	json_object_object_add(o, "network_interfaces", ifaces);
	json_object_object_add(o, "ipv4_address", json_object_new_string(ip));
	json_object_object_add(o, "imds_compat", json_object_new_boolean(c->mmds_imds_compat));
	return o;
}

void vmcfg_mmds_attach(const struct vmcfg *c, struct vm_config *cfg, struct mmds *m)
{
	cfg->mmds = m;
	for (unsigned int i = 0; i < cfg->nnets && i < c->nnets; i++) {
		bool on = m && c->has_mmds && c->nets[i].mmds;

		cfg->nets[i].mmds = on ? m : NULL;
		cfg->nets[i].mmds_ipv4 = c->mmds_ipv4;
	}
	if (m && c->has_mmds)
		mmds_configure(m, c->mmds_version == MMDS_V2 ? MMDS_V2 : MMDS_V1,
			       c->mmds_imds_compat);
}

static bool template_empty(const struct cpu_template *t)
{
	return !t->ncpuid && !t->nmsrs && !t->ncaps;
}

int vmcfg_cpu_config(struct vmcfg *c, json_object *body, char *err)
{
	struct cpu_template *t = malloc(sizeof(*t));
	int ret;

	if (!t)
		return fail(err, "out of memory");
	ret = cpu_template_parse(body, t, err, VMCFG_ERR_LEN);
	if (ret < 0 || template_empty(t)) {
		free(t);
		t = NULL;
	}
	if (ret == 0) {
		free(c->cpu_template);
		c->cpu_template = t;
	}
	return ret;
}

int vmcfg_cpu_template_option(struct vmcfg *c, const char *arg, char *err)
{
	struct cpu_template probe;
	json_object *doc = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	if (strcmp(arg, "None") == 0 || cpu_template_named(arg, &probe) == 0)
		return set_named_template(c, arg, err);
	ret = file_read_all(arg, VMCFG_MAX_BODY, &buf, &len);
	if (ret < 0)
		return fail(err, "--cpu-template: '%s' is no template (None, %s) and no file: %s",
			    arg, cpu_template_names(), strerror(-ret));
	ret = vmcfg_parse((const char *)buf, len, &doc, err);
	if (ret == 0)
		ret = vmcfg_cpu_config(c, doc, err);
	json_object_put(doc);
	free(buf);
	return ret;
}

static const struct field doc_fields[] = {
    {"boot-source", json_type_object, true},	 {"machine-config", json_type_object, false},
    {"drives", json_type_array, false},		 {"network-interfaces", json_type_array, false},
    {"vsock", json_type_object, false},		 {"entropy", json_type_object, false},
    {"logger", json_type_object, false},	 {"metrics", json_type_object, false},
    {"balloon", json_type_object, false},	 {"mmds-config", json_type_object, false},
    {"cpu-config", json_type_object, false},	 {"pmem", json_type_array, false},
    {"memory-hotplug", json_type_object, false}, {"devices", json_type_array, false},
    {"fw_cfg_files", json_type_array, false},	 {NULL, 0, false},
};

/*
 * Sections of Firecracker's document for what Banyan does not have: null,
 * an empty object or an empty array (what a client writes when it wants
 * none) is accepted; anything else is refused, saying what is missing.
 */
static const struct {
	const char *key;
	const char *lacks;
} doc_unsupported[] = {
    {"pmem", "no virtio-pmem devices"},
    {"memory-hotplug", "no memory hotplug (virtio-mem)"},
};

/* An empty cpu-config lists its modifier arrays, all empty. */
static bool doc_empty(json_object *v)
{
	if (json_object_is_type(v, json_type_array))
		return json_object_array_length(v) == 0;
	if (!json_object_is_type(v, json_type_object))
		return false; /* a value: something is asked for */
	json_object_object_foreach(v, key, val)
	{
		(void)key;
		if (val && !doc_empty(val))
			return false;
	}
	return true;
}

static int doc_check_unsupported(json_object *doc, char *err)
{
	json_object *v;

	for (size_t i = 0; i < sizeof(doc_unsupported) / sizeof(doc_unsupported[0]); i++) {
		v = get(doc, doc_unsupported[i].key);
		if (v && !doc_empty(v))
			return fail(err,
				    "config: '%s' asks for what Banyan lacks (%s); use null, an "
				    "empty value or leave it out",
				    doc_unsupported[i].key, doc_unsupported[i].lacks);
	}
	return 0;
}

/* Each element of an array section goes through the section's PUT. */
static int doc_array(struct vmcfg *c, json_object *doc, const char *key, char *err,
		     int (*put)(struct vmcfg *, const char *, json_object *, bool, char *))
{
	json_object *arr = get(doc, key);
	size_t i, n = arr ? json_object_array_length(arr) : 0;
	int ret;

	for (i = 0; i < n; i++) {
		ret = put(c, NULL, json_object_array_get_idx(arr, i), false, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int doc_sections(struct vmcfg *c, json_object *doc, char *err)
{
	json_object *v;
	int ret = 0;

	if ((v = get(doc, "machine-config")))
		ret = vmcfg_machine(c, v, false, err);
	if (ret == 0)
		ret = vmcfg_boot_source(c, get(doc, "boot-source"), err);
	if (ret == 0)
		ret = doc_array(c, doc, "drives", err, vmcfg_drive);
	if (ret == 0)
		ret = doc_array(c, doc, "network-interfaces", err, vmcfg_net);
	if (ret == 0 && (v = get(doc, "vsock")))
		ret = vmcfg_vsock(c, v, err);
	if (ret == 0 && (v = get(doc, "entropy")))
		ret = vmcfg_entropy(c, v, err);
	/* an empty one (what some clients write for none) configures nothing */
	if (ret == 0 && (v = get(doc, "balloon")) && !doc_empty(v))
		ret = vmcfg_balloon(c, v, err);
	if (ret == 0)
		ret = doc_array(c, doc, "devices", err, device_put);
	if (ret == 0)
		ret = doc_array(c, doc, "fw_cfg_files", err, fw_file_put);
	if (ret == 0 && (v = get(doc, "logger")))
		ret = vmcfg_logger(c, v, err);
	if (ret == 0 && (v = get(doc, "metrics")))
		ret = vmcfg_metrics(c, v, err);
	/* an empty one (what some clients write for none) configures nothing */
	if (ret == 0 && (v = get(doc, "mmds-config")) && !doc_empty(v))
		ret = vmcfg_mmds_config(c, v, err);
	if (ret == 0 && (v = get(doc, "cpu-config")))
		ret = vmcfg_cpu_config(c, v, err);
	if (ret == 0)
		ret = doc_check_unsupported(doc, err);
	return ret;
}

int vmcfg_document(struct vmcfg *c, json_object *doc, char *err)
{
	struct vmcfg n;
	int ret = check_object(doc, "config", doc_fields, false, err);

	if (ret < 0)
		return ret;
	if (!get(doc, "boot-source"))
		return fail(err, "config: 'boot-source' must be an object");
	vmcfg_init(&n);
	ret = doc_sections(&n, doc, err);
	if (ret < 0) {
		vmcfg_free(&n);
		return ret;
	}
	vmcfg_free(c);
	*c = n;
	return 0;
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

json_object *vmcfg_machine_to_json(const struct vmcfg *c)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "vcpu_count", json_object_new_int64(c->vcpu_count));
	json_object_object_add(o, "mem_size_mib", json_object_new_int64((int64_t)c->mem_size_mib));
	json_object_object_add(o, "smt", json_object_new_boolean(c->smt));
	json_object_object_add(o, "track_dirty_pages",
			       json_object_new_boolean(c->track_dirty_pages));
	json_object_object_add(o, "huge_pages",
			       json_object_new_string(c->huge_pages_2m ? "2M" : "None"));
	if (c->mem_mergeable)
		json_object_object_add(o, "mem_mergeable", json_object_new_boolean(true));
	if (c->mem_prefault)
		json_object_object_add(o, "mem_prefault", json_object_new_boolean(true));
	if (c->mem_shared)
		json_object_object_add(o, "mem_shared", json_object_new_boolean(true));
	if (c->cpu_template && c->cpu_template->name[0])
		json_object_object_add(o, "cpu_template",
				       json_object_new_string(c->cpu_template->name));
	if (c->on_reboot == ON_REBOOT_RESTART)
		json_object_object_add(o, "on_reboot", json_object_new_string("Restart"));
	if (c->no_irqchip)
		json_object_object_add(o, "no_irqchip", json_object_new_boolean(true));
	if (c->cpu_affinity[0])
		json_object_object_add(o, "cpu_affinity", affinity_to_json(c->cpu_affinity));
	return o;
}

static json_object *modules_to_json(const struct vmcfg *c)
{
	json_object *arr = json_object_new_array();

	for (unsigned int i = 0; arr && i < c->nmodules; i++) {
		json_object *o = json_object_new_object();

		if (!o)
			break;
		json_object_object_add(o, "path", json_object_new_string(c->modules[i].path));
		json_object_object_add(o, "cmdline", str_or_null(c->modules[i].cmdline));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *boot_to_json(const struct vmcfg *c)
{
	json_object *o;

	if (!c->kernel_image_path)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "kernel_image_path", str_or_null(c->kernel_image_path));
	json_object_object_add(o, "initrd_path", str_or_null(c->initrd_path));
	json_object_object_add(o, "boot_args", str_or_null(c->boot_args));
	if (c->nmodules)
		json_object_object_add(o, "modules", modules_to_json(c));
	return o;
}

static json_object *drives_to_json(const struct vmcfg *c)
{
	json_object *a = json_object_new_array(), *o;
	unsigned int i;

	for (i = 0; a && i < c->ndrives; i++) {
		const struct vmcfg_drive *d = &c->drives[i];

		o = json_object_new_object();
		if (!o)
			break;
		json_object_object_add(o, "drive_id", str_or_null(d->drive_id));
		json_object_object_add(o, "path_on_host", str_or_null(d->path_on_host));
		json_object_object_add(o, "is_root_device",
				       json_object_new_boolean(d->is_root_device));
		json_object_object_add(o, "is_read_only", json_object_new_boolean(d->is_read_only));
		json_object_object_add(o, "partuuid", str_or_null(d->partuuid));
		json_object_object_add(o, "cache_type", json_object_new_string(d->cache_type));
		json_object_object_add(o, "io_engine", json_object_new_string(d->io_engine));
		json_object_object_add(o, "rate_limiter",
				       vmcfg_rate_limiter_to_json(&d->rate_limiter));
		json_object_object_add(o, "socket", NULL);
		if (d->overlay_path)
			json_object_object_add(o, "overlay_path",
					       json_object_new_string(d->overlay_path));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *nets_to_json(const struct vmcfg *c)
{
	json_object *a = json_object_new_array(), *o;
	unsigned int i;

	for (i = 0; a && i < c->nnets; i++) {
		o = json_object_new_object();
		if (!o)
			break;
		json_object_object_add(o, "iface_id", str_or_null(c->nets[i].iface_id));
		json_object_object_add(o, "host_dev_name", str_or_null(c->nets[i].host_dev_name));
		json_object_object_add(o, "guest_mac", str_or_null(c->nets[i].guest_mac));
		json_object_object_add(o, "rx_rate_limiter",
				       vmcfg_rate_limiter_to_json(&c->nets[i].rx_rate_limiter));
		json_object_object_add(o, "tx_rate_limiter",
				       vmcfg_rate_limiter_to_json(&c->nets[i].tx_rate_limiter));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *vsock_to_json(const struct vmcfg *c)
{
	json_object *o;

	if (!c->has_vsock || !(o = json_object_new_object()))
		return NULL;
	json_object_object_add(o, "guest_cid", json_object_new_int64(c->vsock_cid));
	json_object_object_add(o, "uds_path", str_or_null(c->vsock_uds_path));
	return o;
}

static json_object *extras_logger(const struct vmcfg *c)
{
	json_object *o;

	if ((!c->log_path && !c->log_level[0]) || !(o = json_object_new_object()))
		return NULL;
	json_object_object_add(o, "log_path", str_or_null(c->log_path));
	json_object_object_add(o, "level",
			       c->log_level[0] ? json_object_new_string(c->log_level) : NULL);
	return o;
}

static json_object *extras_metrics(const struct vmcfg *c)
{
	json_object *o;

	if (!c->metrics_path || !(o = json_object_new_object()))
		return NULL;
	json_object_object_add(o, "metrics_path", json_object_new_string(c->metrics_path));
	return o;
}

static json_object *entropy_to_json(const struct vmcfg *c)
{
	json_object *o;

	if (!c->entropy || !(o = json_object_new_object()))
		return NULL;
	/* {} without one, as before rate limiters (a config file's "entropy": {} reads back) */
	if (rl_config_enabled(&c->entropy_rate_limiter))
		json_object_object_add(o, "rate_limiter",
				       vmcfg_rate_limiter_to_json(&c->entropy_rate_limiter));
	return o;
}

json_object *vmcfg_to_json(const struct vmcfg *c)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "balloon", vmcfg_balloon_to_json(c));
	json_object_object_add(o, "drives", drives_to_json(c));
	json_object_object_add(o, "boot-source", boot_to_json(c));
	json_object_object_add(o, "cpu-config",
			       c->cpu_template && !c->cpu_template->name[0]
				   ? cpu_template_to_json(c->cpu_template)
				   : NULL);
	json_object_object_add(o, "logger", extras_logger(c));
	json_object_object_add(o, "machine-config", vmcfg_machine_to_json(c));
	json_object_object_add(o, "metrics", extras_metrics(c));
	json_object_object_add(o, "mmds-config", vmcfg_mmds_config_to_json(c));
	json_object_object_add(o, "network-interfaces", nets_to_json(c));
	json_object_object_add(o, "vsock", vsock_to_json(c));
	json_object_object_add(o, "entropy", entropy_to_json(c));
	json_object_object_add(o, "pmem", json_object_new_array());
	json_object_object_add(o, "memory-hotplug", NULL);
	if (c->ndevices) /* Banyan's: absent unless used, as Firecracker has no such section */
		json_object_object_add(o, "devices", devices_to_json(c));
	if (c->nfw_files)
		json_object_object_add(o, "fw_cfg_files", fw_files_to_json(c));
	return o;
}

/* Checked with stat and access, never opened: the API lock is held here. */
static int check_file(const char *what, const char *path, unsigned int kinds, char *err)
{
	int ret = file_check_kind(path, kinds);

	if (ret == 0 && access(path, R_OK) < 0)
		ret = -errno;
	if (ret < 0)
		return fail(err, "cannot read %s %s: %s", what, path,
			    ret == -FILE_EKIND ? file_kind_error(kinds) : strerror(-ret));
	return 0;
}

/*
 * What Firecracker adds to a Linux command line to save boot time, for
 * what this machine lacks: no PCI (the kernel's PCI probe only fails, "No
 * config space access function found"), no mouse port or multiplexer
 * behind the i8042. Not i8042.nopnp: the DSDT's PNP0303 is how Linux maps
 * the keyboard's interrupt here (src/arch/x86/acpi.c).
 */
static const char *const linux_boot_defaults[] = {"pci=off", "i8042.noaux", "i8042.nomux", NULL};

/* Whether @param's name ("pci" of "pci=off") is a word of @args[0..@len). */
static bool has_param(const char *args, size_t len, const char *param)
{
	size_t klen = strcspn(param, "=");

	for (size_t i = 0; i + klen <= len; i++) {
		if ((i > 0 && args[i - 1] != ' ') || strncmp(args + i, param, klen) != 0)
			continue;
		if (i + klen == len || args[i + klen] == ' ' || args[i + klen] == '=')
			return true;
	}
	return false;
}

/* @args with the defaults its kernel part (before " -- ") lacks, before that part's end. */
static char *with_boot_defaults(const char *args)
{
	const char *init = strstr(args, " -- ");
	size_t klen = init ? (size_t)(init - args) : strlen(args);
	char extra[128] = "";
	char *s = NULL;

	for (unsigned int i = 0; linux_boot_defaults[i]; i++)
		if (!has_param(args, klen, linux_boot_defaults[i])) {
			strcat(extra, " ");
			strcat(extra, linux_boot_defaults[i]);
		}
	if (asprintf(&s, "%.*s%s%s", (int)klen, args, extra, args + klen) < 0)
		return NULL;
	return s;
}

/*
 * The command line: boot_args (or the default) with the boot-time
 * defaults it lacks, then the root device as Firecracker adds it; both go
 * before " -- ", where the kernel's part ends and init's arguments begin.
 */
static int build_cmdline(struct vmcfg *c, char *err)
{
	const struct vmcfg_drive *root =
	    c->ndrives && c->drives[0].is_root_device ? c->drives : NULL;
	char *args = with_boot_defaults(c->boot_args ? c->boot_args : VMCFG_DEFAULT_BOOT_ARGS);
	char rootw[160] = "";
	const char *init;
	char *s = NULL;
	int n;

	if (!args)
		return fail(err, "out of memory");
	if (root && root->partuuid)
		snprintf(rootw, sizeof(rootw), " root=PARTUUID=%s %s", root->partuuid,
			 root->is_read_only ? "ro" : "rw");
	else if (root)
		snprintf(rootw, sizeof(rootw), " root=/dev/vda %s",
			 root->is_read_only ? "ro" : "rw");
	init = strstr(args, " -- ");
	if (!init)
		init = args + strlen(args);
	n = asprintf(&s, "%.*s%s%s", (int)(init - args), args, rootw, init);
	free(args);
	if (n < 0)
		return fail(err, "out of memory");
	replace_str(&c->cmdline, s);
	return 0;
}

/* What only multiboot kernels and test kernels use: modules, the raw command line, devices. */
static void fill_boot_extras(const struct vmcfg *c, struct vm_config *cfg)
{
	unsigned int i;

	cfg->boot_args = c->boot_args;
	cfg->nmodules = c->nmodules;
	for (i = 0; i < c->nmodules; i++)
		cfg->modules[i] = (struct boot_module){c->modules[i].path, c->modules[i].cmdline};
	cfg->nextra = c->ndevices;
	for (i = 0; i < c->ndevices; i++) {
		const struct vmcfg_device *d = &c->devices[i];

		cfg->extra[i] = (struct extra_device_config){
		    .kind = strcmp(d->type, "testdev") == 0	 ? EXTRA_TESTDEV
			    : strcmp(d->type, "fw-cfg") == 0	 ? EXTRA_FW_CFG
			    : strcmp(d->type, "boot-timer") == 0 ? EXTRA_BOOT_TIMER
								 : EXTRA_DEBUG_EXIT,
		    .iobase = (uint16_t)d->iobase,
		    .iosize = (uint8_t)d->iosize,
		};
	}
	cfg->nfw_cfg_files = c->nfw_files;
	for (i = 0; i < c->nfw_files; i++)
		cfg->fw_cfg_files[i] = (struct fw_cfg_file_config){
		    c->fw_files[i].name, c->fw_files[i].file, c->fw_files[i].string};
}

/* Disks in guest order, which is the drives' (the root device first). */
static void fill_disks(const struct vmcfg *c, struct vm_config *cfg)
{
	cfg->ndisks = c->ndrives;
	for (unsigned int i = 0; i < c->ndrives; i++) {
		const struct vmcfg_drive *d = &c->drives[i];

		cfg->disks[i] = (struct disk_config){
		    .path = d->path_on_host,
		    .id = d->drive_id,
		    .read_only = d->is_read_only,
		    .overlay = d->overlay_path,
		    .limit = d->rate_limiter,
		    .cache = strcmp(d->cache_type, "Direct") == 0 ? DISK_CACHE_NONE
								  : DISK_CACHE_WRITEBACK,
		};
	}
}

/* Network cards in the order configured (eth0, eth1, ...), and the vsock device. */
static void fill_nets(const struct vmcfg *c, struct vm_config *cfg)
{
	cfg->nnets = c->nnets;
	for (unsigned int i = 0; i < c->nnets; i++) {
		const struct vmcfg_net *n = &c->nets[i];
		struct net_config *nc = &cfg->nets[i];

		*nc = (struct net_config){.tap = n->host_dev_name,
					  .id = n->iface_id,
					  .rx_limit = n->rx_rate_limiter,
					  .tx_limit = n->tx_rate_limiter};
		/* net_put accepted only unicast MACs */
		nc->has_mac = n->guest_mac && parse_mac(n->guest_mac, nc->mac) == 0;
	}
	cfg->vsock = (struct vsock_config){.cid = c->has_vsock ? c->vsock_cid : 0,
					   .uds_path = c->vsock_uds_path};
}

/* The kernel and initrd can be read. */
static int check_boot_files(const struct vmcfg *c, char *err)
{
	int ret;

	if (!c->kernel_image_path)
		return fail(err, "no kernel: configure /boot-source before starting the VM");
	ret = check_file("kernel", c->kernel_image_path, FILE_KIND_REG, err);
	if (ret == 0 && c->initrd_path)
		ret = check_file("initrd", c->initrd_path, FILE_KIND_REG, err);
	for (unsigned int i = 0; ret == 0 && i < c->nmodules; i++)
		ret = check_file("module", c->modules[i].path, FILE_KIND_REG, err);
	for (unsigned int i = 0; ret == 0 && i < c->nfw_files; i++)
		if (c->fw_files[i].file)
			ret = check_file("fw_cfg file", c->fw_files[i].file, FILE_KIND_REG, err);
	return ret;
}

int vmcfg_check_files(const struct vmcfg *c, char *err)
{
	int ret = check_boot_files(c, err);

	for (unsigned int i = 0; ret == 0 && i < c->ndrives; i++)
		ret = check_file("disk", c->drives[i].path_on_host, FILE_KIND_REG | FILE_KIND_BLK,
				 err);
	return ret;
}

int vmcfg_to_vm_config(struct vmcfg *c, struct vm_config *cfg, char *err)
{
	int ret;

	if (!c->kernel_image_path)
		return fail(err, "no kernel: configure /boot-source before starting the VM");
	ret = build_cmdline(c, err);
	if (ret < 0)
		return ret;
	cfg->doc = c;
	cfg->kernel_path = c->kernel_image_path;
	cfg->initrd_path = c->initrd_path;
	cfg->cmdline = c->cmdline;
	cfg->ncpus = c->vcpu_count;
	cfg->mem_size = c->mem_size_mib << 20;
	cfg->mem_backing = (struct mem_backing){
	    .hugepages = c->huge_pages_2m,
	    .mergeable = c->mem_mergeable,
	    .prefault = c->mem_prefault,
	    .shared = c->mem_shared,
	};
	cfg->on_reboot = c->on_reboot;
	cfg->no_irqchip = c->no_irqchip;
	cfg->cpu_affinity = c->cpu_affinity;
	cfg->cpu_template = c->cpu_template;
	cfg->rng = c->entropy;
	fill_boot_extras(c, cfg);
	cfg->rng_limit = c->entropy_rate_limiter;
	if (c->balloon.enabled && c->balloon.amount_mib > c->mem_size_mib)
		return fail(err,
			    "balloon: amount_mib (%u) is more than the guest's memory (%llu MiB)",
			    c->balloon.amount_mib, (unsigned long long)c->mem_size_mib);
	cfg->balloon = c->balloon;
	fill_disks(c, cfg);
	fill_nets(c, cfg);
	vmcfg_mmds_attach(c, cfg, cfg->mmds);
	return 0;
}

int vmcfg_load_file(struct vmcfg *c, const char *path, char *err)
{
	json_object *doc = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret = file_read_all(path, VMCFG_MAX_BODY, &buf, &len);

	if (ret < 0)
		return fail(err, "cannot read %s: %s", path,
			    ret == -EFBIG	 ? "larger than 64 KiB"
			    : ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG)
						 : strerror(-ret));
	ret = vmcfg_parse((const char *)buf, len, &doc, err);
	if (ret == 0)
		ret = vmcfg_document(c, doc, err);
	json_object_put(doc);
	free(buf);
	return ret;
}
