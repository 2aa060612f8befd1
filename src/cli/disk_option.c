/* Parsing --disk path=FILE[,id=NAME][,ro][,cache=writeback|none][,overlay=FILE]. */
#include "cli/disk_option.h"

#include "cli/kv_option.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DISK_ID_MAX 20 /* virtio-blk GET_ID returns 20 bytes */

static int disk_id_ok(const char *id)
{
	if (!*id || strlen(id) > DISK_ID_MAX)
		return 0;
	for (; *id; id++)
		if (*id <= ' ' || *id > '~' || *id == '/')
			return 0;
	return 1;
}

static int disk_key(struct disk_config *d, const char *word, char *val, char *err, size_t errlen)
{
	if (strcmp(word, "ro") == 0 && !val) {
		d->read_only = true;
	} else if (strcmp(word, "path") == 0 && val && *val) {
		d->path = val;
	} else if (strcmp(word, "id") == 0 && val) {
		if (!disk_id_ok(val)) {
			snprintf(err, errlen,
				 "--disk id '%s' must be 1..%d printable characters "
				 "without spaces or '/'",
				 val, DISK_ID_MAX);
			return -EINVAL;
		}
		d->id = val;
	} else if (strcmp(word, "overlay") == 0 && val && *val) {
		d->overlay = val;
	} else if (strcmp(word, "cache") == 0 && val &&
		   (strcmp(val, "none") == 0 || strcmp(val, "writeback") == 0)) {
		d->cache = strcmp(val, "none") == 0 ? DISK_CACHE_NONE : DISK_CACHE_WRITEBACK;
	} else {
		snprintf(err, errlen,
			 "--disk: unknown or incomplete '%s%s%s' (use path=FILE"
			 "[,id=NAME][,ro][,cache=writeback|none][,overlay=FILE])",
			 word, val ? "=" : "", val ? val : "");
		return -EINVAL;
	}
	return 0;
}

int disk_option_parse(struct vm_config *cfg, char *arg, char *err, size_t errlen)
{
	struct disk_config d = {.cache = DISK_CACHE_WRITEBACK};
	struct kv_option o;
	char *key, *val;
	int ret;

	if (cfg->ndisks >= VM_MAX_DISKS) {
		snprintf(err, errlen, "at most %d --disk options", VM_MAX_DISKS);
		return -EINVAL;
	}
	kv_option_start(&o, "--disk", arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0) {
		if (o.nwords == 1 && !val && strcmp(key, "ro") != 0)
			d.path = key;
		else if (disk_key(&d, key, val, err, errlen) < 0)
			return -EINVAL;
	}
	if (ret < 0)
		return ret;
	if (!d.path) {
		snprintf(err, errlen, "--disk needs path=FILE");
		return -EINVAL;
	}
	if (d.overlay && d.read_only) {
		snprintf(err, errlen,
			 "--disk: ro and overlay= exclude each other (an overlay is "
			 "written)");
		return -EINVAL;
	}
	for (unsigned int i = 0; d.id && i < cfg->ndisks; i++) {
		if (cfg->disks[i].id && strcmp(cfg->disks[i].id, d.id) == 0) {
			snprintf(err, errlen, "--disk id '%s' is used twice", d.id);
			return -EINVAL;
		}
	}
	cfg->disks[cfg->ndisks++] = d;
	return 0;
}
