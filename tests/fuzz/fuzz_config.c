/*
 * libFuzzer target: the config document (config/vmcfg.c), what
 * `banyan run --config FILE`, a snapshot's config section and the API's
 * bodies are read through into the machine's one configuration.
 *
 * Input: byte 0 picks what the rest is. 0: a whole document (vmcfg_parse,
 * vmcfg_document). Otherwise one section's body, applied to a machine
 * built from a base document as the API applies it: machine-config PUT or
 * PATCH, boot-source, drives PUT or PATCH (ids "rootfs", "data_1"),
 * network-interfaces PUT or PATCH ("eth0"), vsock, entropy, logger,
 * metrics.
 *
 * What is checked, as the header promises it:
 *   - a refused update says why and leaves the configuration as it was;
 *   - an accepted one reads back: GET /vm/config's document (vmcfg_to_json),
 *     printed and parsed again, is accepted and prints the same (a config
 *     read back from a VM starts an identical one), and so does a copy;
 *   - the conversion to what the VMM runs succeeds when a kernel is set,
 *     with the document's vCPUs and memory, and says why when it fails.
 *
 * Build and run: tests/fuzz/meson.build (the unit suite runs it briefly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmcfg.h"
#include "fuzz_log.h"

static const char base_doc[] =
    "{\"boot-source\": {\"kernel_image_path\": \"/k\", \"boot_args\": \"console=ttyS0\"}, "
    "\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 256}, "
    "\"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"/nonexistent.img\", "
    "\"is_root_device\": true, \"is_read_only\": false}], "
    "\"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}]}";

static struct vmcfg base;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	json_object *doc = NULL;
	char err[VMCFG_ERR_LEN];

	(void)argc;
	(void)argv;
	fuzz_log_quiet();
	vmcfg_init(&base);
	if (vmcfg_parse(base_doc, strlen(base_doc), &doc, err) < 0 ||
	    vmcfg_document(&base, doc, err) < 0) {
		fprintf(stderr, "the base document: %s\n", err);
		abort();
	}
	json_object_put(doc);
	return 0;
}

/* GET /vm/config's text for @c (malloc'ed). */
static char *doc_text(const struct vmcfg *c)
{
	json_object *j = vmcfg_to_json(c);
	char *s;

	if (!j)
		abort();
	s = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);
	if (!s)
		abort();
	return s;
}

static void fail_check(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "%s\n  %s\n  %s\n", what, a, b ? b : "");
	abort();
}

/* @text as a --config file makes a machine that reads back as @text. */
static void check_reads_back(const char *text)
{
	struct vmcfg c;
	json_object *doc = NULL;
	char err[VMCFG_ERR_LEN] = "", *again;

	vmcfg_init(&c);
	if (vmcfg_parse(text, strlen(text), &doc, err) < 0 || vmcfg_document(&c, doc, err) < 0)
		fail_check("the document read back is refused", text, err);
	json_object_put(doc);
	again = doc_text(&c);
	if (strcmp(again, text) != 0)
		fail_check("the document read back differs", text, again);
	free(again);
	vmcfg_free(&c);
}

static void check_accepted(struct vmcfg *c)
{
	struct vmcfg copy;
	struct vm_config cfg = {0};
	char err[VMCFG_ERR_LEN] = "", *text = doc_text(c), *copied;

	check_reads_back(text);
	vmcfg_init(&copy);
	if (vmcfg_copy(&copy, c) < 0)
		abort();
	copied = doc_text(&copy);
	if (strcmp(copied, text) != 0)
		fail_check("a copy differs", text, copied);
	if (vmcfg_to_vm_config(&copy, &cfg, err) == 0) {
		if (!copy.kernel_image_path || cfg.ncpus != copy.vcpu_count ||
		    cfg.mem_size != copy.mem_size_mib << 20 || !cfg.cmdline)
			fail_check("the machine differs from its document", text, NULL);
	} else if (copy.kernel_image_path || !err[0]) {
		fail_check("no machine from the document", text, err);
	}
	free(copied);
	free(text);
	vmcfg_free(&copy);
}

/* One section's body, as its API route applies it. */
static int apply_section(struct vmcfg *c, unsigned int pick, json_object *body, char *err)
{
	switch (pick) {
	case 0:
	case 1:
		return vmcfg_machine(c, body, pick == 1, err);
	case 2:
		return vmcfg_boot_source(c, body, err);
	case 3:
	case 4:
		return vmcfg_drive(c, "rootfs", body, pick == 4, err);
	case 5:
		return vmcfg_drive(c, "data_1", body, false, err);
	case 6:
	case 7:
		return vmcfg_net(c, "eth0", body, pick == 7, err);
	case 8:
		return vmcfg_vsock(c, body, err);
	case 9:
		return vmcfg_entropy(c, body, err);
	case 10:
		return vmcfg_logger(c, body, err);
	default:
		return vmcfg_metrics(c, body, err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmcfg c;
	json_object *body = NULL;
	char err[VMCFG_ERR_LEN] = "", *before, *after;
	int ret;

	if (size < 1)
		return 0;
	vmcfg_init(&c);
	if (vmcfg_copy(&c, &base) < 0)
		abort();
	before = doc_text(&c);
	ret = vmcfg_parse((const char *)data + 1, size - 1, &body, err);
	if (ret == 0)
		ret = data[0] == 0 ? vmcfg_document(&c, body, err)
				   : apply_section(&c, (data[0] - 1) % 12, body, err);
	json_object_put(body);
	if (ret < 0) {
		after = doc_text(&c);
		if (!err[0] || strcmp(before, after) != 0)
			fail_check(err[0] ? "a refused update changed the machine"
					  : "a refusal without a reason",
				   before, after);
		free(after);
	} else {
		check_accepted(&c);
	}
	free(before);
	vmcfg_free(&c);
	return 0;
}
