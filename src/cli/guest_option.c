/* --device and repeatable --initrd: another spelling of "devices" and boot-source "modules". */
#include "cli/guest_option.h"

#include "cli/kv_option.h"
#include "config/vmcfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A port number: decimal or 0x hex, at most 0xffff. */
static int port_value(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 0);
	return errno || end == s || *end || *out < 0 || *out > 0xffff ? -EINVAL : 0;
}

static int device_word(json_object *body, const char *key, const char *val, char *err,
		       size_t errlen)
{
	long v;

	if (!val || (strcmp(key, "iobase") && strcmp(key, "iosize"))) {
		snprintf(err, errlen,
			 "--device: unknown word '%s' (use NAME[,iobase=PORT][,iosize=N])", key);
		return -EINVAL;
	}
	if (port_value(val, &v) < 0) {
		snprintf(err, errlen, "--device: %s '%s' is not a number up to 0xffff", key, val);
		return -EINVAL;
	}
	json_object_object_add(body, key, json_object_new_int64(v));
	return 0;
}

int device_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	json_object *body = json_object_new_object();
	char cerr[VMCFG_ERR_LEN];
	struct kv_option o;
	char *key, *val;
	int ret;

	if (!body)
		return -ENOMEM;
	kv_option_start(&o, "--device", arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0) {
		if (o.nwords == 1 && !val)
			json_object_object_add(body, "type", json_object_new_string(key));
		else if ((ret = device_word(body, key, val, err, errlen)) < 0)
			break;
	}
	if (ret == 0 && !json_object_object_get_ex(body, "type", NULL)) {
		snprintf(err, errlen,
			 "--device: the first word names the device (debug-exit, testdev)");
		ret = -EINVAL;
	}
	if (ret == 0 && vmcfg_device(c, body, cerr) < 0) {
		snprintf(err, errlen, "--device: %s", cerr);
		ret = -EINVAL;
	}
	json_object_put(body);
	return ret;
}

/* string=TEXT ends the option: TEXT is everything after it. */
static char *split_string_word(char *arg)
{
	char *s = strncmp(arg, "string=", 7) == 0 ? arg : strstr(arg, ",string=");

	if (!s)
		return NULL;
	if (s != arg)
		*s++ = '\0';
	else
		*arg = '\0';
	return s + 7;
}

int fw_cfg_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	json_object *body = json_object_new_object();
	char *str = split_string_word(arg), *key, *val, cerr[VMCFG_ERR_LEN];
	struct kv_option o;
	int ret;

	if (!body)
		return -ENOMEM;
	if (str)
		json_object_object_add(body, "string", json_object_new_string(str));
	kv_option_start(&o, "--fw-cfg", arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0) {
		if (!val || (strcmp(key, "name") && strcmp(key, "file"))) {
			snprintf(err, errlen,
				 "--fw-cfg: unknown word '%s' (use "
				 "name=opt/NAME,file=PATH or name=opt/NAME,string=TEXT)",
				 key);
			ret = -EINVAL;
			break;
		}
		json_object_object_add(body, key, json_object_new_string(val));
	}
	if (ret == 0 && vmcfg_fw_cfg_file(c, body, cerr) < 0) {
		snprintf(err, errlen, "--fw-cfg: %s", cerr);
		ret = -EINVAL;
	}
	json_object_put(body);
	return ret;
}

#define CMDLINE_WORD ",cmdline="

static json_object *module_object(char *arg)
{
	json_object *m = json_object_new_object();
	char *cmd = strstr(arg, CMDLINE_WORD);

	if (!m)
		return NULL;
	if (cmd) {
		*cmd = '\0';
		cmd += strlen(CMDLINE_WORD);
	}
	json_object_object_add(m, "path", json_object_new_string(arg));
	if (cmd)
		json_object_object_add(m, "cmdline", json_object_new_string(cmd));
	return m;
}

int initrd_options_body(json_object *body, char **args, unsigned int n, char *err, size_t errlen)
{
	json_object *arr;

	if (n == 0)
		return 0;
	if (n == 1 && !strstr(args[0], CMDLINE_WORD)) {
		json_object_object_add(body, "initrd_path", json_object_new_string(args[0]));
		return 0;
	}
	arr = json_object_new_array();
	for (unsigned int i = 0; arr && i < n; i++) {
		json_object *m = module_object(args[i]);

		if (!m || json_object_array_add(arr, m) < 0) {
			json_object_put(m);
			json_object_put(arr);
			arr = NULL;
		}
	}
	if (!arr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_object_object_add(body, "modules", arr);
	return 0;
}
