/*
 * The machine's one configuration: command-line options fill the JSON
 * document through the API's section setters, and vmcfg_to_vm_config is
 * the one way to what the VMM runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmcfg.h"
#include "cli/disk_option.h"
#include "cli/guest_option.h"
#include "cli/net_option.h"
#include "cli/limit_option.h"
#include "cli/balloon_option.h"
#include "cli/memory_option.h"

/* Run parser @fn on a copy of @text; returns its result, the reason in @err. */
static int opt(int (*fn)(struct vmcfg *, char *, char *, size_t), struct vmcfg *c, const char *text,
	       char *err)
{
	char arg[256];

	snprintf(arg, sizeof(arg), "%s", text);
	err[0] = '\0';
	return fn(c, arg, err, 512);
}

static json_object *parse(const char *text)
{
	char err[VMCFG_ERR_LEN];
	json_object *o = NULL;

	assert_int_equal(vmcfg_parse(text, strlen(text), &o, err), 0);
	return o;
}

static int setup(void **state)
{
	static struct vmcfg c;

	vmcfg_init(&c);
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	vmcfg_free(*state);
	return 0;
}

/* --disk words are the drive's fields; a disk without id= gets its default serial. */
static void disk_options_fill_drives(void **state)
{
	struct vmcfg *c = *state;
	char err[512];

	assert_int_equal(opt(disk_option_parse, c, "/img/a.raw,ro", err), 0);
	assert_int_equal(
	    opt(disk_option_parse, c, "path=/img/b.raw,id=data,cache=none,overlay=/o", err), 0);
	assert_int_equal(c->ndrives, 2);
	assert_string_equal(c->drives[0].drive_id, "banyan-vda");
	assert_string_equal(c->drives[0].path_on_host, "/img/a.raw");
	assert_true(c->drives[0].is_read_only);
	assert_string_equal(c->drives[0].cache_type, "Writeback");
	assert_false(c->drives[0].is_root_device);
	assert_string_equal(c->drives[1].drive_id, "data");
	assert_string_equal(c->drives[1].cache_type, "Direct");
	assert_string_equal(c->drives[1].overlay_path, "/o");
}

/* A refused --disk leaves the document as it was, with the reason. */
static void disk_option_errors(void **state)
{
	struct vmcfg *c = *state;
	char err[512];

	assert_int_equal(opt(disk_option_parse, c, "/a,id=x", err), 0);
	assert_int_equal(opt(disk_option_parse, c, "/b,id=x", err), -EINVAL);
	assert_string_equal(err, "--disk id 'x' is used twice");
	assert_int_equal(opt(disk_option_parse, c, "/b,ro,overlay=/o", err), -EINVAL);
	assert_non_null(strstr(err, "ro and overlay= exclude each other"));
	assert_int_equal(opt(disk_option_parse, c, "/b,cache=sometimes", err), -EINVAL);
	assert_non_null(strstr(err, "unknown or incomplete 'cache=sometimes'"));
	assert_int_equal(opt(disk_option_parse, c, "id=y", err), -EINVAL);
	assert_string_equal(err, "--disk needs path=FILE");
	assert_int_equal(opt(disk_option_parse, c, "/b,id=a.b", err), -EINVAL);
	assert_non_null(strstr(err, "invalid id 'a.b'"));
	assert_int_equal(c->ndrives, 1);
	for (unsigned int i = 1; i < VM_MAX_DISKS; i++)
		assert_int_equal(opt(disk_option_parse, c, "/more", err), 0);
	assert_int_equal(opt(disk_option_parse, c, "/one-too-many", err), -EINVAL);
	assert_non_null(strstr(err, "at most 16 drives"));
}

/* --net and --vsock: ids netN by place; a TAP or MAC used twice is refused (the API's rule too). */
static void net_and_vsock_options(void **state)
{
	struct vmcfg *c = *state;
	char err[512];

	assert_int_equal(opt(net_option_parse, c, "tap0", err), 0);
	assert_int_equal(opt(net_option_parse, c, "tap=tap1,mac=52:54:00:12:34:56,id=second", err),
			 0);
	assert_string_equal(c->nets[0].iface_id, "net0");
	assert_null(c->nets[0].guest_mac);
	assert_string_equal(c->nets[1].host_dev_name, "tap1");
	assert_string_equal(c->nets[1].guest_mac, "52:54:00:12:34:56");
	assert_int_equal(opt(net_option_parse, c, "tap=tap0", err), -EINVAL);
	assert_non_null(strstr(err, "host_dev_name 'tap0' is used twice"));
	assert_int_equal(opt(net_option_parse, c, "tap=tap2,mac=52:54:00:12:34:56", err), -EINVAL);
	assert_int_equal(opt(net_option_parse, c, "tap=tap2,id=second", err), -EINVAL);
	assert_int_equal(opt(net_option_parse, c, "tap=tap2,mac=01:00:5e:00:00:01", err), -EINVAL);
	assert_non_null(strstr(err, "not a unicast MAC address"));
	assert_int_equal(c->nnets, 2);
	assert_int_equal(opt(vsock_option_parse, c, "cid=2,socket=/s", err), -EINVAL);
	assert_non_null(strstr(err, "from 3 to"));
	assert_int_equal(opt(vsock_option_parse, c, "cid=3", err), -EINVAL);
	assert_false(c->has_vsock);
	assert_int_equal(opt(vsock_option_parse, c, "cid=7,socket=/run/v.sock", err), 0);
	assert_int_equal(c->vsock_cid, 7);
	assert_string_equal(c->vsock_uds_path, "/run/v.sock");
	assert_int_equal(opt(vsock_option_parse, c, "cid=8,socket=/x", err), -EINVAL);
}

/* The root device is vda whatever order the drives came in; the command line names it. */
static void root_drive_first_and_conversion(void **state)
{
	struct vmcfg *c = *state;
	struct vm_config cfg = {0};
	char err[VMCFG_ERR_LEN];
	json_object *b;

	b = parse("{\"kernel_image_path\": \"/k\"}");
	assert_int_equal(vmcfg_boot_source(c, b, err), 0);
	json_object_put(b);
	assert_int_equal(opt(disk_option_parse, c, "/data", err), 0);
	b = parse("{\"drive_id\": \"root\", \"path_on_host\": \"/r\", \"is_root_device\": true}");
	assert_int_equal(vmcfg_drive(c, "root", b, false, err), 0);
	json_object_put(b);
	assert_string_equal(c->drives[0].drive_id, "root");
	assert_int_equal(vmcfg_to_vm_config(c, &cfg, err), 0);
	assert_ptr_equal(cfg.doc, c);
	assert_int_equal(cfg.ndisks, 2);
	assert_string_equal(cfg.disks[0].path, "/r");
	assert_string_equal(cfg.disks[1].id, "banyan-vda"); /* named when it was the first */
	assert_string_equal(cfg.cmdline, VMCFG_DEFAULT_BOOT_ARGS
			    " pci=off i8042.noaux i8042.nomux root=/dev/vda rw");
	assert_int_equal(cfg.ncpus, VMCFG_DEFAULT_VCPUS);
	assert_int_equal(cfg.mem_size, (uint64_t)VMCFG_DEFAULT_MEM_MIB << 20);
	assert_int_equal(cfg.on_reboot, ON_REBOOT_EXIT);
}

/* boot_args -> cmdline: the boot-time defaults it lacks, inside the kernel's part. */
static const char *cmdline_of(struct vmcfg *c, const char *args)
{
	static struct vm_config cfg;
	char body[256], err[512];
	json_object *b;

	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"/k\", \"boot_args\": \"%s\"}",
		 args);
	b = parse(body);
	assert_int_equal(vmcfg_boot_source(c, b, err), 0);
	json_object_put(b);
	assert_int_equal(vmcfg_to_vm_config(c, &cfg, err), 0);
	return cfg.cmdline;
}

static void cmdline_boot_time_defaults(void **state)
{
	struct vmcfg *c = *state;

	assert_string_equal(cmdline_of(c, "console=ttyS0"),
			    "console=ttyS0 pci=off i8042.noaux i8042.nomux");
	/* The user's own setting stays, and nothing is added twice. */
	assert_string_equal(cmdline_of(c, "pci=nomsi i8042.nomux quiet"),
			    "pci=nomsi i8042.nomux quiet i8042.noaux");
	assert_string_equal(cmdline_of(c, "i8042.noaux=1 pci=off i8042.nomux"),
			    "i8042.noaux=1 pci=off i8042.nomux");
	/* A word that only starts like one is not it. */
	assert_string_equal(cmdline_of(c, "xpci=off i8042.noauxx"),
			    "xpci=off i8042.noauxx pci=off i8042.noaux i8042.nomux");
	/* After " -- " the words are init's: the defaults go before, and init's do not count. */
	assert_string_equal(cmdline_of(c, "quiet -- pci=off"),
			    "quiet pci=off i8042.noaux i8042.nomux -- pci=off");
}

/* The root device, as Firecracker adds it, is the kernel's too: before " -- ". */
static void cmdline_root_before_init_args(void **state)
{
	struct vmcfg *c = *state;
	char err[512];
	json_object *b = parse("{\"drive_id\": \"root\", \"path_on_host\": \"/r\", "
			       "\"is_root_device\": true, \"is_read_only\": true}");

	assert_int_equal(vmcfg_drive(c, "root", b, false, err), 0);
	json_object_put(b);
	assert_string_equal(
	    cmdline_of(c, "quiet -- /bin/sh -c x"),
	    "quiet pci=off i8042.noaux i8042.nomux root=/dev/vda ro -- /bin/sh -c x");
}

/* Banyan's machine-config fields round-trip through the document; a copy is deep. */
static void machine_banyan_fields_and_copy(void **state)
{
	struct vmcfg *c = *state, copy;
	char err[VMCFG_ERR_LEN];
	json_object *b = parse("{\"on_reboot\": \"Restart\", \"no_irqchip\": true}"), *doc;

	assert_int_equal(vmcfg_machine(c, b, true, err), 0);
	json_object_put(b);
	b = parse("{\"on_reboot\": \"Sometimes\"}");
	assert_int_equal(vmcfg_machine(c, b, true, err), -EINVAL);
	json_object_put(b);
	assert_int_equal(c->on_reboot, ON_REBOOT_RESTART);
	assert_true(c->no_irqchip);
	b = parse("{\"vcpu_count\": 2, \"mem_size_mib\": 64}"); /* a Firecracker client's PUT */
	assert_int_equal(vmcfg_machine(c, b, false, err), 0);
	json_object_put(b);
	assert_int_equal(c->on_reboot, ON_REBOOT_RESTART);
	b = parse("{\"kernel_image_path\": \"/k\", \"boot_args\": \"quiet\"}");
	assert_int_equal(vmcfg_boot_source(c, b, err), 0);
	json_object_put(b);
	vmcfg_init(&copy);
	assert_int_equal(vmcfg_copy(&copy, c), 0);
	assert_ptr_not_equal(copy.kernel_image_path, c->kernel_image_path);
	vmcfg_free(c);
	vmcfg_init(c);
	doc = vmcfg_to_json(&copy);
	assert_int_equal(vmcfg_document(c, doc, err), 0);
	json_object_put(doc);
	assert_int_equal(c->on_reboot, ON_REBOOT_RESTART);
	assert_true(c->no_irqchip);
	assert_string_equal(c->boot_args, "quiet");
	vmcfg_free(&copy);
}

/*
 * CPU templates: a named one is machine-config's cpu_template, a custom one
 * the document's cpu-config; both survive the document (what a snapshot
 * records) and a copy, and the last one set wins.
 */
static void cpu_templates_in_the_document(void **state)
{
	struct vmcfg *c = *state, copy;
	char err[VMCFG_ERR_LEN];
	json_object *b = parse("{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": "
			       "\"x86-64-v3\"}"),
		    *doc, *m, *v;

	assert_int_equal(vmcfg_machine(c, b, false, err), 0);
	json_object_put(b);
	assert_string_equal(c->cpu_template->name, "x86-64-v3");
	b = parse("{\"cpu_template\": \"T2\"}");
	assert_int_equal(vmcfg_machine(c, b, true, err), -EINVAL);
	assert_non_null(strstr(err, "x86-64-v2, x86-64-v3"));
	json_object_put(b);
	b = parse("{\"kernel_image_path\": \"/k\"}");
	assert_int_equal(vmcfg_boot_source(c, b, err), 0);
	json_object_put(b);
	vmcfg_init(&copy);
	assert_int_equal(vmcfg_copy(&copy, c), 0);
	assert_ptr_not_equal(copy.cpu_template, c->cpu_template);
	doc = vmcfg_to_json(&copy);
	assert_true(json_object_object_get_ex(doc, "machine-config", &m));
	assert_true(json_object_object_get_ex(m, "cpu_template", &v));
	assert_string_equal(json_object_get_string(v), "x86-64-v3");
	json_object_put(doc);
	b = parse("{\"cpuid_modifiers\": [{\"leaf\": \"0x6\", \"subleaf\": \"0x0\", "
		  "\"flags\": 0, \"modifiers\": [{\"register\": \"ecx\", \"bitmap\": "
		  "\"0b1xxx\"}]}]}");
	assert_int_equal(vmcfg_cpu_config(&copy, b, err), 0);
	json_object_put(b);
	assert_string_equal(copy.cpu_template->name, "");
	doc = vmcfg_to_json(&copy);
	vmcfg_free(c);
	vmcfg_init(c);
	assert_int_equal(vmcfg_document(c, doc, err), 0);
	json_object_put(doc);
	assert_non_null(c->cpu_template);
	assert_string_equal(c->cpu_template->name, "");
	assert_int_equal(c->cpu_template->ncpuid, 1);
	assert_int_equal(c->cpu_template->cpuid[0].value, 0x8);
	vmcfg_free(&copy);
}

/* --memory SIZE[,hugepages=2M][,mergeable][,prefault] are machine-config's fields. */
static void memory_option_words(void **state)
{
	struct vmcfg *c = *state;
	struct vm_config cfg = {0};
	char err[512];
	json_object *o, *v;

	assert_int_equal(opt(memory_option_parse, c, "512M", err), 0);
	assert_int_equal(c->mem_size_mib, 512);
	assert_false(c->huge_pages_2m || c->mem_mergeable || c->mem_prefault);
	assert_int_equal(opt(memory_option_parse, c, "1G,hugepages=2M,prefault", err), 0);
	assert_int_equal(c->mem_size_mib, 1024);
	assert_true(c->huge_pages_2m && c->mem_prefault);
	o = vmcfg_machine_to_json(c);
	assert_true(json_object_object_get_ex(o, "huge_pages", &v));
	assert_string_equal(json_object_get_string(v), "2M");
	assert_true(json_object_object_get_ex(o, "mem_prefault", &v) && json_object_get_boolean(v));
	json_object_put(o);
	assert_int_equal(c->kernel_image_path == NULL, 1);
	c->kernel_image_path = strdup("/k");
	assert_int_equal(vmcfg_to_vm_config(c, &cfg, err), 0);
	assert_true(cfg.mem_backing.hugepages && cfg.mem_backing.prefault);
	assert_false(cfg.mem_backing.mergeable);
	assert_int_equal(opt(memory_option_parse, c, "256,hugepages=none,mergeable", err), 0);
	assert_false(c->huge_pages_2m);
	assert_true(c->mem_mergeable);
}

/* Bad sizes, unknown page sizes and words, odd sizes on huge pages: refused, @c unchanged.
 */
static void memory_option_refusals(void **state)
{
	static const struct {
		const char *arg, *why;
	} bad[] = {
	    {"lots", "bad size"},
	    {"1K", "whole number of MiB"},
	    {"1M", "between 32"},
	    {"", "no size"},
	    {"prefault", "bad size"},
	    {"hugepages=2M", "size comes first"},
	    {"64M,hugepages=1G", "unsupported page size"},
	    {"64M,hugepages=4K", "unsupported page size"},
	    {"64M,hugepages", "unknown word"},
	    {"63M,hugepages=2M", "multiple of 2"},
	    {"64M,hugepages=2M,mergeable", "KSM"},
	    {"64M,prefault=yes", "unknown word"},
	    {"64M,,prefault", "empty"},
	};
	struct vmcfg *c = *state;
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(opt(memory_option_parse, c, bad[i].arg, err), -EINVAL);
		if (!strstr(err, bad[i].why))
			fail_msg("--memory %s: '%s' does not say '%s'", bad[i].arg, err,
				 bad[i].why);
		assert_int_equal(c->mem_size_mib, VMCFG_DEFAULT_MEM_MIB);
		assert_false(c->huge_pages_2m || c->mem_mergeable || c->mem_prefault);
	}
}

/* Firecracker's huge_pages: "None" or "2M"; PUT resets it, PATCH keeps it; 2M needs whole
 * pages. */
static void machine_huge_pages_json(void **state)
{
	struct vmcfg *c = *state;
	char err[VMCFG_ERR_LEN];
	json_object *b =
	    parse("{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"huge_pages\": \"2M\"}");

	assert_int_equal(vmcfg_machine(c, b, false, err), 0);
	json_object_put(b);
	assert_true(c->huge_pages_2m);
	b = parse("{\"mem_size_mib\": 129}");
	assert_int_equal(vmcfg_machine(c, b, true, err), -EINVAL);
	assert_non_null(strstr(err, "multiple of 2"));
	json_object_put(b);
	assert_int_equal(c->mem_size_mib, 128);
	b = parse("{\"huge_pages\": \"1G\"}");
	assert_int_equal(vmcfg_machine(c, b, true, err), -EINVAL);
	json_object_put(b);
	b = parse("{\"mem_mergeable\": true}");
	assert_int_equal(vmcfg_machine(c, b, true, err), -EINVAL);
	json_object_put(b);
	assert_true(c->huge_pages_2m);
	assert_false(c->mem_mergeable);
	b = parse("{\"vcpu_count\": 1, \"mem_size_mib\": 129}"); /* a PUT without huge_pages */
	assert_int_equal(vmcfg_machine(c, b, false, err), 0);
	json_object_put(b);
	assert_false(c->huge_pages_2m);
	b = parse("{\"mem_prefault\": \"yes\"}");
	assert_int_equal(vmcfg_machine(c, b, true, err), -EINVAL);
	json_object_put(b);
}

/* An input file that cannot be read is refused before KVM, the disk named as --disk calls
 * it. */
static void check_files_names_the_disk(void **state)
{
	struct vmcfg *c = *state;
	char err[VMCFG_ERR_LEN];
	json_object *b = parse("{\"kernel_image_path\": \"/proc/self/cmdline\"}");

	assert_int_equal(vmcfg_boot_source(c, b, err), 0);
	json_object_put(b);
	assert_int_equal(vmcfg_check_files(c, err), 0);
	assert_int_equal(opt(disk_option_parse, c, "/nonexistent/d.img", err), 0);
	assert_int_equal(vmcfg_check_files(c, err), -EINVAL);
	assert_string_equal(err, "cannot read disk /nonexistent/d.img: No such file or directory");
	free(c->drives[0].path_on_host);
	c->drives[0].path_on_host = strdup("/");
	assert_int_equal(vmcfg_check_files(c, err), -EINVAL);
	assert_string_equal(err, "cannot read disk /: not a regular file or block device");
}

/* Firecracker's sections for what Banyan lacks: empty or null is fine, a request is
 * refused. */
static void doc_unsupported_sections(void **state)
{
	static const struct {
		const char *extra;
		int ret;
		const char *msg;
	} cases[] = {
	    {"\"balloon\": null, \"pmem\": [], \"memory-hotplug\": {}", 0, NULL},
	    {"\"cpu-config\": {\"cpuid_modifiers\": [], \"msr_modifiers\": []}", 0, NULL},
	    {"\"pmem\": [{\"id\": \"p\", \"path_on_host\": \"/x\"}]", -EINVAL,
	     "'pmem' asks for what Banyan lacks (no virtio-pmem devices)"},
	    {"\"balloon\": {\"amount_mib\": 1}", -EINVAL,
	     "balloon: missing required field 'deflate_on_oom'"},
	    {"\"memory-hotplug\": {\"total_size_mib\": 1024}", -EINVAL, "no memory hotplug"},
	    {"\"cpu-config\": {\"msr_modifiers\": [{\"addr\": \"0x10a\"}]}", -EINVAL,
	     "MSR 0x10a: 'bitmap' must be"},
	};
	struct vmcfg *c = *state;
	char err[VMCFG_ERR_LEN], text[512];
	json_object *doc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
			 "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, %s}", cases[i].extra);
		doc = parse(text);
		err[0] = '\0';
		assert_int_equal(vmcfg_document(c, doc, err), cases[i].ret);
		if (cases[i].msg)
			assert_non_null(strstr(err, cases[i].msg));
		json_object_put(doc);
	}
}

/* --balloon and the document's balloon: the same section, read back as written. */
static void balloon_section(void **state)
{
	struct vmcfg *c = *state;
	char err[VMCFG_ERR_LEN];
	json_object *o, *v;

	assert_int_equal(opt(balloon_option_parse, c, "", err), 0);
	assert_true(c->balloon.enabled && c->balloon.reporting);
	assert_int_equal(c->balloon.amount_mib, 0);
	assert_int_equal(
	    opt(balloon_option_parse, c, "amount=64,deflate_on_oom,stats=2,reporting=off", err), 0);
	assert_int_equal(c->balloon.amount_mib, 64);
	assert_true(c->balloon.deflate_on_oom);
	assert_false(c->balloon.reporting);
	assert_int_equal(c->balloon.stats_interval_s, 2);
	assert_int_equal(opt(balloon_option_parse, c, "amount=x", err), -EINVAL);
	assert_int_equal(opt(balloon_option_parse, c, "reporting=maybe", err), -EINVAL);
	assert_int_equal(c->balloon.amount_mib, 64); /* unchanged by a refused one */
	o = vmcfg_balloon_to_json(c);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "stats_polling_interval_s", &v));
	assert_int_equal(json_object_get_int(v), 2);
	json_object_put(o);
	/* PATCH: only after the section exists, the interval cannot go to 0. */
	uint32_t val = 0;
	o = parse("{\"stats_polling_interval_s\": 0}");
	assert_int_equal(vmcfg_balloon_patch(c, o, true, &val, err), -EINVAL);
	json_object_put(o);
	o = parse("{\"amount_mib\": 100}");
	assert_int_equal(vmcfg_balloon_patch(c, o, false, &val, err), 0);
	assert_int_equal(val, 100);
	json_object_put(o);
}

/* A running disk's new file: the old string outlives the swap, a copy does not share it. */
static void drive_live_path(void **state)
{
	struct vmcfg *c = *state, copy;
	struct rl_config limit;
	char err[VMCFG_ERR_LEN];
	const char *path, *old;
	json_object *b;
	int index = -1;

	assert_int_equal(opt(disk_option_parse, c, "/a,id=x", err), 0);
	assert_int_equal(opt(disk_option_parse, c, "/b,id=y", err), 0);
	b = parse("{\"drive_id\": \"y\", \"path_on_host\": \"/new\"}");
	assert_int_equal(vmcfg_drive_live(c, "y", b, &index, &path, &limit, err), 0);
	assert_int_equal(index, 1);
	assert_string_equal(path, "/new");
	old = c->drives[1].path_on_host;
	assert_int_equal(vmcfg_drive_set_path(c, 1, path), 0);
	json_object_put(b);
	assert_string_equal(c->drives[1].path_on_host, "/new");
	assert_string_equal(old, "/b"); /* still valid: a vm_config may point at it */
	assert_int_equal(vmcfg_copy(&copy, c), 0);
	assert_null(copy.retired);
	vmcfg_free(&copy);
	b = parse("{\"drive_id\": \"z\", \"path_on_host\": \"/new\"}");
	assert_int_equal(vmcfg_drive_live(c, "z", b, &index, &path, &limit, err), -EINVAL);
	assert_string_equal(err, "drives: no drive 'z' to update");
	json_object_put(b);
	b = parse("{\"drive_id\": \"x\", \"is_read_only\": true}");
	assert_int_equal(vmcfg_drive_live(c, "x", b, &index, &path, &limit, err), -EINVAL);
	assert_non_null(strstr(err, "unknown field 'is_read_only'"));
	json_object_put(b);
	/* A rate limiter: the buckets the body names replace the drive's, the others stay.
	 */
	c->drives[0].rate_limiter.ops = (struct tb_config){.size = 5, .refill_ms = 100};
	b = parse("{\"drive_id\": \"x\", \"rate_limiter\": {\"bandwidth\": {\"size\": 9, "
		  "\"refill_time\": 10}}}");
	assert_int_equal(vmcfg_drive_live(c, "x", b, &index, &path, &limit, err), 0);
	assert_null(path);
	assert_int_equal(limit.bw.size, 9);
	assert_int_equal(limit.ops.size, 5);
	assert_int_equal(c->drives[0].rate_limiter.bw.size, 0); /* changes nothing itself */
	json_object_put(b);
	b = parse("{\"drive_id\": \"x\", \"rate_limiter\": {\"ops\": {\"size\": 9}}}");
	assert_int_equal(vmcfg_drive_live(c, "x", b, &index, &path, &limit, err), -EINVAL);
	assert_non_null(strstr(err, "refill_time"));
	json_object_put(b);
}

/* Firecracker's level names in any case, kept in their canonical spelling. */
static void logger_level_any_case(void **state)
{
	struct vmcfg *c = *state;
	char err[VMCFG_ERR_LEN];
	json_object *b = parse("{\"level\": \"tRaCe\"}");

	assert_int_equal(vmcfg_logger(c, b, err), 0);
	assert_string_equal(c->log_level, "Trace");
	json_object_put(b);
	b = parse("{\"level\": \"Loud\"}");
	assert_int_equal(vmcfg_logger(c, b, err), -EINVAL);
	json_object_put(b);
}

/*
 * --device, --fw-cfg and multiboot modules: options to the document, through
 * GET /vm/config and back, and to what the VMM runs; bad ones refused.
 */
static void guest_options_round_trip(void **state)
{
	struct vmcfg *c = *state, copy;
	char err[512];
	char *mods[2] = {strdup("/m0,cmdline=a,b c"), strdup("/m1")};
	struct vm_config cfg = {0};
	json_object *b = json_object_new_object(), *doc;
	int ret;

	assert_int_equal(opt(device_option_parse, c, "debug-exit,iobase=0x501,iosize=2", err), 0);
	assert_int_equal(opt(device_option_parse, c, "testdev", err), 0);
	assert_int_equal(opt(device_option_parse, c, "testdev", err), -EINVAL);
	assert_int_equal(opt(device_option_parse, c, "frob", err), -EINVAL);
	assert_int_equal(opt(device_option_parse, c, "testdev,iobase=1", err), -EINVAL);
	assert_int_equal(opt(fw_cfg_option_parse, c, "name=opt/a,string=x,y=z", err), 0);
	assert_int_equal(opt(fw_cfg_option_parse, c, "name=etc/a,string=x", err), -EINVAL);
	assert_int_equal(opt(fw_cfg_option_parse, c, "name=opt/b,file=/f,string=x", err), -EINVAL);
	assert_int_equal(opt(fw_cfg_option_parse, c, "name=opt/a,file=/f", err), -EINVAL);
	assert_int_equal(opt(device_option_parse, c, "fw-cfg", err), 0); /* after --fw-cfg: fine */
	json_object_object_add(b, "kernel_image_path", json_object_new_string("/k"));
	assert_int_equal(initrd_options_body(b, mods, 2, err, sizeof(err)), 0);
	assert_int_equal(vmcfg_boot_source(c, b, err), 0);
	json_object_put(b);
	free(mods[0]);
	free(mods[1]);
	vmcfg_init(&copy);
	assert_int_equal(vmcfg_copy(&copy, c), 0);
	doc = vmcfg_to_json(&copy);
	vmcfg_free(&copy);
	vmcfg_free(c);
	vmcfg_init(c);
	ret = vmcfg_document(c, doc, err);
	if (ret)
		print_message("%s\n", err);
	assert_int_equal(ret, 0);
	json_object_put(doc);
	assert_int_equal(vmcfg_to_vm_config(c, &cfg, err), 0);
	assert_int_equal(cfg.nextra, 3);
	assert_int_equal(cfg.extra[0].kind, EXTRA_DEBUG_EXIT);
	assert_int_equal(cfg.extra[0].iobase, 0x501);
	assert_int_equal(cfg.extra[0].iosize, 2);
	assert_int_equal(cfg.extra[2].kind, EXTRA_FW_CFG);
	assert_int_equal(cfg.nfw_cfg_files, 1);
	assert_string_equal(cfg.fw_cfg_files[0].string, "x,y=z");
	assert_int_equal(cfg.nmodules, 2);
	assert_string_equal(cfg.modules[0].cmdline, "a,b c");
	assert_null(cfg.modules[1].cmdline);
	assert_null(cfg.initrd_path);
	assert_null(cfg.boot_args);
}

/* Rate-limiter words (--disk bw=/ops=, --net rx_/tx_, --rng=) are the API's buckets. */
static void rate_limiter_options(void **state)
{
	struct vmcfg *c = *state;
	struct vm_config cfg = {0};
	char err[512];

	assert_int_equal(
	    opt(disk_option_parse, c, "/img/a.raw,bw=10M/100ms,bw_burst=1G,ops=1000/1s", err), 0);
	assert_int_equal(c->drives[0].rate_limiter.bw.size, 10ULL << 20);
	assert_int_equal(c->drives[0].rate_limiter.bw.refill_ms, 100);
	assert_int_equal(c->drives[0].rate_limiter.bw.one_time_burst, 1ULL << 30);
	assert_int_equal(c->drives[0].rate_limiter.ops.size, 1000);
	assert_int_equal(c->drives[0].rate_limiter.ops.refill_ms, 1000);
	assert_int_equal(opt(net_option_parse, c, "tap=t0,rx_bw=1048576/10,tx_ops=50/2s", err), 0);
	assert_int_equal(c->nets[0].rx_rate_limiter.bw.size, 1048576);
	assert_int_equal(c->nets[0].rx_rate_limiter.bw.refill_ms, 10);
	assert_int_equal(c->nets[0].rx_rate_limiter.ops.size, 0);
	assert_int_equal(c->nets[0].tx_rate_limiter.ops.size, 50);
	assert_int_equal(c->nets[0].tx_rate_limiter.ops.refill_ms, 2000);
	assert_int_equal(opt(rng_option_parse, c, "bw=64K/1s", err), 0);
	assert_true(c->entropy);
	assert_int_equal(c->entropy_rate_limiter.bw.size, 65536);
	/* What the VMM runs carries them. */
	assert_int_equal(opt(disk_option_parse, c, "/img/b.raw", err), 0);
	c->kernel_image_path = strdup("/k");
	assert_int_equal(vmcfg_to_vm_config(c, &cfg, err), 0);
	assert_int_equal(cfg.disks[0].limit.bw.size, 10ULL << 20);
	assert_false(rl_config_enabled(&cfg.disks[1].limit));
	assert_int_equal(cfg.nets[0].tx_limit.ops.size, 50);
	assert_int_equal(cfg.rng_limit.bw.refill_ms, 1000);
}

static void rate_limiter_option_errors(void **state)
{
	struct vmcfg *c = *state;
	char err[512];

	assert_int_equal(opt(disk_option_parse, c, "/img/a.raw,bw=10M", err), -EINVAL);
	assert_non_null(strstr(err, "bw=AMOUNT/TIME"));
	assert_int_equal(opt(disk_option_parse, c, "/img/a.raw,bw=10M/0", err), -EINVAL);
	assert_non_null(strstr(err, "refill_time must be at least 1 ms"));
	assert_int_equal(opt(disk_option_parse, c, "/img/a.raw,ops=5/1h", err), -EINVAL);
	assert_int_equal(opt(disk_option_parse, c, "/img/a.raw,bw_burst=1M", err), -EINVAL);
	assert_non_null(strstr(err, "size"));
	assert_int_equal(opt(net_option_parse, c, "tap=t0,bw=1M/1s", err), -EINVAL);
	assert_int_equal(opt(net_option_parse, c, "tap=t0,rx_bw=x/1s", err), -EINVAL);
	assert_int_equal(opt(rng_option_parse, c, "ro", err), -EINVAL);
	assert_int_equal(c->ndrives + c->nnets, 0);
	assert_false(c->entropy);
}

/*
 * The API's rate_limiter objects: {} and null are no limit, bad values are
 * refused with the field named, GET /vm/config shows what was set and a
 * document made of it reads back the same; PATCH replaces only the
 * buckets it names.
 */
static void rate_limiter_json(void **state)
{
	struct vmcfg *c = *state, back;
	json_object *b, *doc;
	char err[VMCFG_ERR_LEN];
	const char *good =
	    "{\"iface_id\": \"e\", \"host_dev_name\": \"t\", \"rx_rate_limiter\": {}, "
	    "\"tx_rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 10, "
	    "\"one_time_burst\": 5}, \"ops\": null}}";
	const char *bad[] = {
	    "{\"bandwidth\": {\"size\": 1000}}",
	    "{\"bandwidth\": {\"size\": 1000, \"refill_time\": 0}}",
	    "{\"ops\": {\"size\": 9223372036854775807, \"refill_time\": 1}}",
	    "{\"ops\": {\"size\": 10, \"refill_time\": -1}}",
	    "{\"bandwidth\": {\"size\": 1, \"refill_time\": 1, \"burst\": 1}}",
	    "{\"bw\": {}}",
	    "[]",
	};
	char body[256];

	b = parse(good);
	assert_int_equal(vmcfg_net(c, "e", b, false, err), 0);
	json_object_put(b);
	assert_false(rl_config_enabled(&c->nets[0].rx_rate_limiter));
	assert_int_equal(c->nets[0].tx_rate_limiter.bw.size, 1000);
	assert_int_equal(c->nets[0].tx_rate_limiter.bw.one_time_burst, 5);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"rate_limiter\": %s}", bad[i]);
		b = parse(body);
		assert_int_equal(vmcfg_entropy(c, b, err), -EINVAL);
		assert_non_null(strstr(err, "rate_limiter"));
		json_object_put(b);
	}
	assert_false(c->entropy);
	/* PATCH: ops added, bandwidth kept. */
	b = parse("{\"iface_id\": \"e\", \"tx_rate_limiter\": {\"ops\": {\"size\": 7, "
		  "\"refill_time\": 100}}}");
	assert_int_equal(vmcfg_net(c, "e", b, true, err), 0);
	json_object_put(b);
	assert_int_equal(c->nets[0].tx_rate_limiter.bw.size, 1000);
	assert_int_equal(c->nets[0].tx_rate_limiter.ops.size, 7);
	/* GET /vm/config, and back. */
	c->kernel_image_path = strdup("/k");
	doc = vmcfg_to_json(c);
	vmcfg_init(&back);
	assert_int_equal(vmcfg_document(&back, doc, err), 0);
	assert_memory_equal(&back.nets[0].tx_rate_limiter, &c->nets[0].tx_rate_limiter,
			    sizeof(struct rl_config));
	assert_false(rl_config_enabled(&back.nets[0].rx_rate_limiter));
	json_object_put(doc);
	vmcfg_free(&back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(disk_options_fill_drives, setup, teardown),
	    cmocka_unit_test_setup_teardown(disk_option_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(net_and_vsock_options, setup, teardown),
	    cmocka_unit_test_setup_teardown(cmdline_boot_time_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(root_drive_first_and_conversion, setup, teardown),
	    cmocka_unit_test_setup_teardown(machine_banyan_fields_and_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(cmdline_root_before_init_args, setup, teardown),
	    cmocka_unit_test_setup_teardown(check_files_names_the_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(cpu_templates_in_the_document, setup, teardown),
	    cmocka_unit_test_setup_teardown(memory_option_words, setup, teardown),
	    cmocka_unit_test_setup_teardown(memory_option_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(machine_huge_pages_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(doc_unsupported_sections, setup, teardown),
	    cmocka_unit_test_setup_teardown(balloon_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(drive_live_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(logger_level_any_case, setup, teardown),
	    cmocka_unit_test_setup_teardown(guest_options_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(rate_limiter_options, setup, teardown),
	    cmocka_unit_test_setup_teardown(rate_limiter_option_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(rate_limiter_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
