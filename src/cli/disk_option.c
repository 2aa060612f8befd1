/*
 * Parsing --disk path=FILE[,id=NAME][,ro][,cache=writeback|none][,overlay=FILE]
 * [,bw=SIZE/TIME][,ops=N/TIME]... (cli/limit_option.h) into the body of a drive (the API's PUT
 * /drives), which vmcfg_drive checks and adds: the words are only another spelling of the JSON
 * fields.
 */
#include "cli/disk_option.h"

#include "config/vmcfg.h"
#include "cli/kv_option.h"
#include "cli/limit_option.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One word of --disk onto its field of @body; -EINVAL with @err for an unknown word. */
static int disk_key(json_object *body, const char *word, char *val, char *err, size_t errlen)
{
	const char *field = NULL;
	json_object *v = NULL;
	char why[160];
	int ret = limit_option_word(body, "rate_limiter", word, val, why, sizeof(why));

	if (ret) {
		if (ret < 0)
			snprintf(err, errlen, "--disk: %s", why);
		return ret < 0 ? ret : 0;
	}
	if (strcmp(word, "ro") == 0 && !val) {
		field = "is_read_only";
		v = json_object_new_boolean(true);
	} else if (val && *val && strcmp(word, "path") == 0) {
		field = "path_on_host";
	} else if (val && strcmp(word, "id") == 0) {
		field = "drive_id";
	} else if (val && *val && strcmp(word, "overlay") == 0) {
		field = "overlay_path";
	} else if (val && (strcmp(val, "none") == 0 || strcmp(val, "writeback") == 0) &&
		   strcmp(word, "cache") == 0) {
		field = "cache_type";
		val = strcmp(val, "none") == 0 ? "Direct" : "Writeback";
	}
	if (!field) {
		snprintf(err, errlen,
			 "--disk: unknown or incomplete '%s%s%s' (use path=FILE"
			 "[,id=NAME][,ro][,cache=writeback|none][,overlay=FILE]"
			 "[,bw=SIZE/TIME][,ops=N/TIME])",
			 word, val ? "=" : "", val ? val : "");
		return -EINVAL;
	}
	json_object_object_add(body, field, v ? v : json_object_new_string(val));
	return 0;
}

/* The words, on top of the defaults of a command-line disk. */
static int disk_words(json_object *body, char *arg, char *err, size_t errlen)
{
	struct kv_option o;
	char *key, *val;
	int ret;

	json_object_object_add(body, "is_root_device", json_object_new_boolean(false));
	json_object_object_add(body, "cache_type", json_object_new_string("Writeback"));
	kv_option_start(&o, "--disk", arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0) {
		if (o.nwords == 1 && !val && strcmp(key, "ro") != 0)
			json_object_object_add(body, "path_on_host", json_object_new_string(key));
		else if (disk_key(body, key, val, err, errlen) < 0)
			return -EINVAL;
	}
	if (ret < 0)
		return ret;
	if (!json_object_object_get_ex(body, "path_on_host", NULL)) {
		snprintf(err, errlen, "--disk needs path=FILE");
		return -EINVAL;
	}
	if (json_object_object_get_ex(body, "is_read_only", NULL) &&
	    json_object_object_get_ex(body, "overlay_path", NULL)) {
		snprintf(err, errlen,
			 "--disk: ro and overlay= exclude each other (an overlay is "
			 "written)");
		return -EINVAL;
	}
	return 0;
}

/* The drive's id: id=, or the default serial of the next disk. A second --disk with it is refused.
 */
static int disk_id(const struct vmcfg *c, json_object *body, char *err, size_t errlen)
{
	json_object *v = NULL;
	char def[32];
	const char *id;

	if (!json_object_object_get_ex(body, "drive_id", &v)) {
		virtio_blk_default_id(c->ndrives, def, sizeof(def));
		v = json_object_new_string(def);
		json_object_object_add(body, "drive_id", v);
	}
	id = json_object_get_string(v);
	for (unsigned int i = 0; id && i < c->ndrives; i++) {
		if (strcmp(c->drives[i].drive_id, id) == 0) {
			snprintf(err, errlen, "--disk id '%s' is used twice", id);
			return -EINVAL;
		}
	}
	return 0;
}

int disk_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	json_object *body = json_object_new_object();
	char why[VMCFG_ERR_LEN];
	int ret = body ? disk_words(body, arg, err, errlen) : -ENOMEM;

	if (ret == 0)
		ret = disk_id(c, body, err, errlen);
	if (ret == 0 && vmcfg_drive(c, NULL, body, false, why) < 0) {
		snprintf(err, errlen, "--disk: %s", why);
		ret = -EINVAL;
	}
	if (ret == -ENOMEM)
		snprintf(err, errlen, "--disk: out of memory");
	json_object_put(body);
	return ret;
}
