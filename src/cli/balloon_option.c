/* --balloon: its words become a PUT /balloon body, checked by vmcfg_balloon. */
#include "cli/balloon_option.h"

#include "cli/kv_option.h"
#include "util/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One word into @body; -EINVAL with the reason in @err. */
static int balloon_word(json_object *body, const char *key, const char *val, char *err,
			size_t errlen)
{
	uint64_t v;

	if (!strcmp(key, "deflate_on_oom") && !val) {
		json_object_object_add(body, "deflate_on_oom", json_object_new_boolean(true));
		return 0;
	}
	if (!strcmp(key, "reporting") && val && (!strcmp(val, "on") || !strcmp(val, "off"))) {
		json_object_object_add(body, "free_page_reporting",
				       json_object_new_boolean(!strcmp(val, "on")));
		return 0;
	}
	if ((!strcmp(key, "amount") || !strcmp(key, "stats")) && val &&
	    parse_uint(val, 0, UINT32_MAX, &v) == 0) {
		json_object_object_add(
		    body, !strcmp(key, "amount") ? "amount_mib" : "stats_polling_interval_s",
		    json_object_new_int64((int64_t)v));
		return 0;
	}
	snprintf(err, errlen,
		 "--balloon: '%s%s%s' is not one of amount=MIB, deflate_on_oom, stats=SECS, "
		 "reporting=on|off",
		 key, val ? "=" : "", val ? val : "");
	return -EINVAL;
}

int balloon_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	json_object *body = json_object_new_object();
	char why[VMCFG_ERR_LEN], *key, *val, empty[1] = "";
	struct kv_option o;
	int ret = 0;

	if (!body) {
		snprintf(err, errlen, "--balloon: out of memory");
		return -ENOMEM;
	}
	json_object_object_add(body, "amount_mib", json_object_new_int64(0));
	json_object_object_add(body, "deflate_on_oom", json_object_new_boolean(false));
	kv_option_start(&o, "--balloon", arg ? arg : empty);
	while (ret == 0 && (ret = kv_option_next(&o, &key, &val, err, errlen)) > 0)
		ret = balloon_word(body, key, val, err, errlen);
	if (ret == 0 && vmcfg_balloon(c, body, why) < 0) {
		snprintf(err, errlen, "--balloon: %s", why);
		ret = -EINVAL;
	}
	json_object_put(body);
	return ret;
}
