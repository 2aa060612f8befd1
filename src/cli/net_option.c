/*
 * Parsing --net tap=NAME[,mac=MAC][,id=ID] and --vsock cid=N,socket=PATH into
 * the bodies of PUT /network-interfaces and PUT /vsock, which vmcfg_net and
 * vmcfg_vsock check and apply: the words are another spelling of the fields.
 */
#include "cli/net_option.h"

#include "config/vmcfg.h"
#include "cli/kv_option.h"
#include "cli/limit_option.h"
#include "util/parse.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The field of @body the word @word sets; NULL for an unknown word. */
static const char *word_field(const char *const (*map)[2], const char *word)
{
	for (; (*map)[0]; map++)
		if (strcmp((*map)[0], word) == 0)
			return (*map)[1];
	return NULL;
}

/*
 * --net's rate-limiter words: rx_ or tx_ and a limiter word. 1 when @key
 * was one (set in @body), 0 when not, -EINVAL with @err.
 */
static int net_limit_word(json_object *body, const char *key, const char *val, char *err,
			  size_t errlen)
{
	const char *field = strncmp(key, "rx_", 3) == 0	  ? "rx_rate_limiter"
			    : strncmp(key, "tx_", 3) == 0 ? "tx_rate_limiter"
							  : NULL;
	char why[160];
	int ret = field ? limit_option_word(body, field, key + 3, val, why, sizeof(why)) : 0;

	if (ret < 0)
		snprintf(err, errlen, "--net %s: %s", key, why);
	return ret;
}

/*
 * The words of option @name into @body through @map (word, field); a bare
 * first word is @bare's field; @limits (or NULL) takes rate-limiter words.
 * -EINVAL with @err for an unknown word.
 */
static int option_body(const char *name, char *arg, const char *const (*map)[2], const char *bare,
		       const char *usage, json_object *body, char *err, size_t errlen,
		       int (*limits)(json_object *, const char *, const char *, char *, size_t))
{
	struct kv_option o;
	const char *field;
	char *key, *val;
	int ret;

	kv_option_start(&o, name, arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0) {
		if (limits && (ret = limits(body, key, val, err, errlen)) != 0) {
			if (ret < 0)
				return ret;
			continue;
		}
		field = o.nwords == 1 && !val ? bare : NULL;
		if (val && *val)
			field = word_field(map, key);
		if (!field) {
			snprintf(err, errlen, "%s: unknown or incomplete '%s%s%s' (use %s)", name,
				 key, val ? "=" : "", val ? val : "", usage);
			return -EINVAL;
		}
		json_object_object_add(body, field, json_object_new_string(val ? val : key));
	}
	return ret;
}

static bool has(json_object *body, const char *field)
{
	return json_object_object_get_ex(body, field, NULL);
}

/* The interface's id: id=, or "netN" by its place. A second --net with it is refused. */
static int net_id(const struct vmcfg *c, json_object *body, char *err, size_t errlen)
{
	json_object *v = NULL;
	char def[16];

	if (!json_object_object_get_ex(body, "iface_id", &v)) {
		virtio_net_default_id(c->nnets, def, sizeof(def));
		json_object_object_add(body, "iface_id", v = json_object_new_string(def));
	}
	for (unsigned int i = 0; v && i < c->nnets; i++) {
		if (strcmp(c->nets[i].iface_id, json_object_get_string(v)) == 0) {
			snprintf(err, errlen, "--net id '%s' is used twice",
				 json_object_get_string(v));
			return -EINVAL;
		}
	}
	return 0;
}

/* Hand @body to a section setter; its reason becomes @name's. */
static int apply(int ret, const char *name, const char *why, char *err, size_t errlen)
{
	if (ret < 0)
		snprintf(err, errlen, "%s: %s", name, why);
	return ret < 0 ? -EINVAL : 0;
}

int net_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	static const char *const map[][2] = {
	    {"tap", "host_dev_name"}, {"mac", "guest_mac"}, {"id", "iface_id"}, {NULL, NULL}};
	json_object *body = json_object_new_object();
	char why[VMCFG_ERR_LEN];
	int ret =
	    option_body("--net", arg, map, "host_dev_name",
			"tap=NAME[,mac=MAC][,id=ID][,rx_bw=SIZE/TIME][,tx_bw=...][,rx_ops=N/TIME]"
			"[,tx_ops=...]",
			body, err, errlen, net_limit_word);

	if (ret == 0 && !has(body, "host_dev_name")) {
		snprintf(err, errlen, "--net needs tap=NAME");
		ret = -EINVAL;
	}
	if (ret == 0)
		ret = net_id(c, body, err, errlen);
	if (ret == 0)
		ret = apply(vmcfg_net(c, NULL, body, false, why), "--net", why, err, errlen);
	json_object_put(body);
	return ret;
}

/* cid=N as the integer guest_cid. */
static int vsock_cid(json_object *body, char *err, size_t errlen)
{
	json_object *v = NULL;
	uint64_t cid;

	if (!json_object_object_get_ex(body, "guest_cid", &v))
		return 0;
	if (parse_uint(json_object_get_string(v), VIRTIO_VSOCK_CID_MIN, VIRTIO_VSOCK_CID_MAX,
		       &cid) < 0) {
		snprintf(err, errlen,
			 "--vsock cid '%s' must be a number from %u to %u (0-2 are reserved, 2 is "
			 "the host)",
			 json_object_get_string(v), VIRTIO_VSOCK_CID_MIN, VIRTIO_VSOCK_CID_MAX);
		return -EINVAL;
	}
	json_object_object_add(body, "guest_cid", json_object_new_int64((int64_t)cid));
	return 0;
}

int vsock_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	static const char *const map[][2] = {
	    {"cid", "guest_cid"}, {"socket", "uds_path"}, {"path", "uds_path"}, {NULL, NULL}};
	json_object *body = json_object_new_object();
	char why[VMCFG_ERR_LEN];
	int ret = 0;

	if (c->has_vsock) {
		snprintf(err, errlen, "only one --vsock");
		ret = -EINVAL;
	}
	if (ret == 0)
		ret = option_body("--vsock", arg, map, NULL, "cid=N,socket=PATH", body, err, errlen,
				  NULL);
	if (ret == 0 && (!has(body, "guest_cid") || !has(body, "uds_path"))) {
		snprintf(err, errlen, "--vsock needs cid=N and socket=PATH");
		ret = -EINVAL;
	}
	if (ret == 0)
		ret = vsock_cid(body, err, errlen);
	if (ret == 0)
		ret = apply(vmcfg_vsock(c, body, why), "--vsock", why, err, errlen);
	json_object_put(body);
	return ret;
}
