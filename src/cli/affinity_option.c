/*
 * Parsing --cpu-affinity vcpu=0-1,io=2 into the cpu_affinity object of
 * machine-config, which vmcfg_machine checks (roles, lists, the host's
 * CPUs) and applies: the words are another spelling of the JSON field.
 */
#include "cli/affinity_option.h"

#include "config/vmcfg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The words into {"role": "list"}: a bare word (a CPU or a range) extends the last list. */
static int affinity_object(char *arg, json_object *roles, char *err, size_t errlen)
{
	char list[CPU_AFFINITY_LEN] = "", *role = NULL, *save = NULL;

	for (char *w = strtok_r(arg, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(w, '=');

		if (!eq && !role) {
			snprintf(err, errlen,
				 "--cpu-affinity: '%s' has no role (use ROLE=CPUS, "
				 "e.g. vcpu=0-1,io=2)",
				 w);
			return -EINVAL;
		}
		if (eq && role)
			json_object_object_add(roles, role, json_object_new_string(list));
		if (eq) {
			*eq = '\0';
			if (json_object_object_get_ex(roles, w, NULL)) {
				snprintf(err, errlen, "--cpu-affinity: role '%s' given twice", w);
				return -EINVAL;
			}
			role = w;
			snprintf(list, sizeof(list), "%s", eq + 1);
		} else {
			snprintf(list + strlen(list), sizeof(list) - strlen(list), ",%s", w);
		}
	}
	if (role)
		json_object_object_add(roles, role, json_object_new_string(list));
	return 0;
}

int affinity_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	json_object *body = json_object_new_object(), *roles = json_object_new_object();
	char why[VMCFG_ERR_LEN];
	int ret = body && roles ? affinity_object(arg, roles, err, errlen) : -ENOMEM;

	if (ret == 0) {
		json_object_object_add(body, "cpu_affinity", roles);
		roles = NULL;
		if (vmcfg_machine(c, body, true, why) < 0) {
			snprintf(err, errlen, "--cpu-affinity: %s", why);
			ret = -EINVAL;
		}
	}
	if (ret == -ENOMEM)
		snprintf(err, errlen, "--cpu-affinity: out of memory");
	json_object_put(roles);
	json_object_put(body);
	return ret;
}
