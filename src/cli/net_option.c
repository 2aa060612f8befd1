/* Parsing --net tap=NAME[,mac=MAC][,id=ID] and --vsock cid=N,socket=PATH. */
#include "cli/net_option.h"

#include "cli/kv_option.h"
#include "util/parse.h"
#include "vmm/vm.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#define NET_ID_MAX     15
#define VSOCK_PATH_MAX 96 /* sun_path is 108 bytes; "_4294967295" must still fit */

static int net_name_ok(const char *s, size_t max)
{
	if (!*s || strlen(s) > max)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~' || *s == '/' || *s == ':')
			return 0;
	return 1;
}

static int net_key(struct net_config *n, const char *word, char *val, char *err, size_t errlen)
{
	if (strcmp(word, "tap") == 0 && val) {
		if (!net_name_ok(val, IFNAMSIZ - 1)) {
			snprintf(err, errlen,
				 "--net tap '%s' is not an interface name (1..%d "
				 "characters, no spaces, '/' or ':')",
				 val, IFNAMSIZ - 1);
			return -EINVAL;
		}
		n->tap = val;
	} else if (strcmp(word, "mac") == 0 && val) {
		if (parse_mac(val, n->mac) < 0) {
			snprintf(err, errlen,
				 "--net mac '%s' is not a unicast MAC address "
				 "(like 52:54:00:12:34:56)",
				 val);
			return -EINVAL;
		}
		n->has_mac = true;
	} else if (strcmp(word, "id") == 0 && val) {
		if (!net_name_ok(val, NET_ID_MAX)) {
			snprintf(err, errlen,
				 "--net id '%s' must be 1..%d printable characters "
				 "without spaces, '/' or ':'",
				 val, NET_ID_MAX);
			return -EINVAL;
		}
		n->id = val;
	} else {
		snprintf(err, errlen,
			 "--net: unknown or incomplete '%s%s%s' (use tap=NAME"
			 "[,mac=MAC][,id=ID])",
			 word, val ? "=" : "", val ? val : "");
		return -EINVAL;
	}
	return 0;
}

static int net_check_unique(const struct vm_config *cfg, const struct net_config *n, char *err,
			    size_t errlen)
{
	for (unsigned int i = 0; i < cfg->nnets; i++) {
		const struct net_config *o = &cfg->nets[i];

		if (strcmp(o->tap, n->tap) == 0) {
			snprintf(err, errlen, "--net tap '%s' is used twice", n->tap);
			return -EINVAL;
		}
		if (n->id && o->id && strcmp(o->id, n->id) == 0) {
			snprintf(err, errlen, "--net id '%s' is used twice", n->id);
			return -EINVAL;
		}
		if (n->has_mac && o->has_mac && memcmp(o->mac, n->mac, 6) == 0) {
			snprintf(err, errlen, "--net: two interfaces with the same MAC");
			return -EINVAL;
		}
	}
	return 0;
}

int net_option_parse(struct vm_config *cfg, char *arg, char *err, size_t errlen)
{
	struct net_config n = {0};
	struct kv_option o;
	char *key, *val;
	int ret;

	if (cfg->nnets >= VM_MAX_NETS) {
		snprintf(err, errlen, "at most %d --net options", VM_MAX_NETS);
		return -EINVAL;
	}
	kv_option_start(&o, "--net", arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0) {
		if (o.nwords == 1 && !val) {
			if (!net_name_ok(key, IFNAMSIZ - 1)) {
				snprintf(err, errlen, "--net tap '%s' is not an interface name",
					 key);
				return -EINVAL;
			}
			n.tap = key;
		} else if (net_key(&n, key, val, err, errlen) < 0) {
			return -EINVAL;
		}
	}
	if (ret < 0)
		return ret;
	if (!n.tap) {
		snprintf(err, errlen, "--net needs tap=NAME");
		return -EINVAL;
	}
	if (net_check_unique(cfg, &n, err, errlen) < 0)
		return -EINVAL;
	cfg->nets[cfg->nnets++] = n;
	return 0;
}

static int vsock_key(struct vsock_config *v, const char *word, char *val, char *err, size_t errlen)
{
	uint64_t cid;

	if (strcmp(word, "cid") == 0 && val) {
		if (parse_uint(val, 3, UINT32_MAX - 1, &cid) < 0) {
			snprintf(err, errlen,
				 "--vsock cid '%s' must be a number from 3 to %u "
				 "(0-2 are reserved, 2 is the host)",
				 val, UINT32_MAX - 1);
			return -EINVAL;
		}
		v->cid = (uint32_t)cid;
	} else if ((strcmp(word, "socket") == 0 || strcmp(word, "path") == 0) && val && *val) {
		if (strlen(val) > VSOCK_PATH_MAX) {
			snprintf(err, errlen, "--vsock socket path longer than %d bytes",
				 VSOCK_PATH_MAX);
			return -EINVAL;
		}
		v->uds_path = val;
	} else {
		snprintf(err, errlen,
			 "--vsock: unknown or incomplete '%s%s%s' (use cid=N,"
			 "socket=PATH)",
			 word, val ? "=" : "", val ? val : "");
		return -EINVAL;
	}
	return 0;
}

int vsock_option_parse(struct vm_config *cfg, char *arg, char *err, size_t errlen)
{
	struct vsock_config v = {0};
	struct kv_option o;
	char *key, *val;
	int ret;

	if (cfg->vsock.cid) {
		snprintf(err, errlen, "only one --vsock");
		return -EINVAL;
	}
	kv_option_start(&o, "--vsock", arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0)
		if (vsock_key(&v, key, val, err, errlen) < 0)
			return -EINVAL;
	if (ret < 0)
		return ret;
	if (!v.cid || !v.uds_path) {
		snprintf(err, errlen, "--vsock needs cid=N and socket=PATH");
		return -EINVAL;
	}
	cfg->vsock = v;
	return 0;
}
