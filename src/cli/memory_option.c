/*
 * Parsing --memory SIZE,hugepages=2M,mergeable,prefault into the fields of
 * machine-config, which vmcfg_machine checks (a size in range, whole huge
 * pages, no KSM on huge pages) and applies: the words are another spelling
 * of the JSON fields.
 */
#include "cli/memory_option.h"

#include "cli/kv_option.h"
#include "config/vmcfg.h"
#include "util/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* SIZE: whole MiB (the document's unit). */
static int memory_size(json_object *body, const char *s, char *err, size_t errlen)
{
	uint64_t bytes;

	if (parse_size(s, &bytes) < 0) {
		snprintf(err, errlen, "--memory: bad size '%s' (use e.g. 512M or 2G)", s);
		return -EINVAL;
	}
	if (bytes & 0xfffff) {
		snprintf(err, errlen, "--memory: size '%s' is not a whole number of MiB", s);
		return -EINVAL;
	}
	json_object_object_add(body, "mem_size_mib", json_object_new_int64((int64_t)(bytes >> 20)));
	return 0;
}

/* One word after the size. */
static int memory_word(json_object *body, const char *key, const char *val, char *err,
		       size_t errlen)
{
	if (strcmp(key, "hugepages") == 0 && val) {
		if (strcmp(val, "2M") && strcmp(val, "none")) {
			snprintf(err, errlen,
				 "--memory: hugepages=%s: unsupported page size (2M or none)", val);
			return -EINVAL;
		}
		json_object_object_add(body, "huge_pages",
				       json_object_new_string(val[0] == '2' ? "2M" : "None"));
		return 0;
	}
	if ((strcmp(key, "mergeable") == 0 || strcmp(key, "prefault") == 0 ||
	     strcmp(key, "shared") == 0) &&
	    !val) {
		json_object_object_add(body,
				       key[0] == 'm'   ? "mem_mergeable"
				       : key[0] == 'p' ? "mem_prefault"
						       : "mem_shared",
				       json_object_new_boolean(true));
		return 0;
	}
	snprintf(err, errlen,
		 "--memory: unknown word '%s%s%s' (use "
		 "SIZE[,hugepages=2M][,mergeable][,prefault][,shared])",
		 key, val ? "=" : "", val ? val : "");
	return -EINVAL;
}

static int memory_body(json_object *body, char *arg, char *err, size_t errlen)
{
	struct kv_option o;
	char *key, *val;
	int ret;

	kv_option_start(&o, "--memory", arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0) {
		if (o.nwords == 1 && !val)
			ret = memory_size(body, key, err, errlen);
		else if (o.nwords == 1)
			ret = (snprintf(err, errlen, "--memory: the size comes first (e.g. 512M)"),
			       -EINVAL);
		else
			ret = memory_word(body, key, val, err, errlen);
		if (ret < 0)
			return ret;
	}
	if (ret == 0 && o.nwords == 0) {
		snprintf(err, errlen, "--memory: no size given (e.g. 512M)");
		return -EINVAL;
	}
	return ret;
}

int memory_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	json_object *body = json_object_new_object();
	char why[VMCFG_ERR_LEN];
	int ret = body ? memory_body(body, arg, err, errlen) : -ENOMEM;

	if (ret == 0 && vmcfg_machine(c, body, true, why) < 0) {
		snprintf(err, errlen, "--memory: %s", why);
		ret = -EINVAL;
	}
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	json_object_put(body);
	return ret;
}
