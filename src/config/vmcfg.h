/*
 * The VM as a JSON document, in Firecracker's shape: the bodies of
 * PUT /machine-config, /boot-source, /drives/{id}, /network-interfaces/{id},
 * /vsock, /entropy, /logger, /metrics, and the whole of GET /vm/config,
 * which is also the --config file of `banyan run` and what a snapshot
 * records of the machine. It is the machine's one configuration: the
 * command-line options of `banyan run` fill it through the same section
 * setters as the API, and vmcfg_to_vm_config is the one way to the
 * struct vm_config the VMM runs. A config read back from a VM starts an
 * identical one.
 *
 * Every update is all or nothing: a body with an unknown field, a wrong type
 * or an out-of-range value leaves the spec unchanged and explains itself in
 * @err (a fault_message). Strings in the spec are owned by it.
 */
#ifndef BANYAN_API_VMCFG_H
#define BANYAN_API_VMCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arch/x86/cpu_template.h"
#include "util/parse.h"
#include "vmm/vm.h"

#define VMCFG_MAX_BODY (64 * 1024) /* largest API body or config file */
#define VMCFG_ERR_LEN  256
#define VMCFG_MAX_ID   DEVICE_ID_MAX	  /* Firecracker's resource ids: drive_id, iface_id */
#define VMCFG_MEM_MIN  (VM_MEM_MIN >> 20) /* mem_size_mib */
#define VMCFG_MEM_MAX  (VM_MEM_MAX >> 20)
/* boot_args when none are given: the console is COM1 (arch/x86's serial port). */
#define VMCFG_DEFAULT_BOOT_ARGS "console=ttyS0"
#define VMCFG_DEFAULT_VCPUS	1
#define VMCFG_DEFAULT_MEM_MIB	256

struct vmcfg_drive {
	char *drive_id;
	char *path_on_host;
	char *partuuid;	    /* NULL: none */
	char *overlay_path; /* Banyan: copy-on-write overlay over path_on_host; NULL: none */
	bool is_root_device;
	bool is_read_only;
	char cache_type[16]; /* "Unsafe", "Writeback" or "Direct" (Banyan) */
	char io_engine[8];   /* "Sync" or "Async" */
	struct rl_config rate_limiter;
};

struct vmcfg_net {
	char *iface_id;
	char *host_dev_name;
	char *guest_mac; /* NULL: none */
	bool mmds;	 /* named by mmds-config: serves the metadata service */
	struct rl_config rx_rate_limiter;
	struct rl_config tx_rate_limiter;
};

/* An opt-in device (Banyan: "devices"): {"type": "debug-exit", "iobase": 244, "iosize": 1}. */
struct vmcfg_device {
	char type[16]; /* "debug-exit" or "testdev" */
	uint32_t iobase;
	uint32_t iosize;
};

/* A user file of the fw-cfg device (Banyan: "fw_cfg_files"): {"name": "opt/x", "file"|"string":
 * ...}. */
struct vmcfg_fw_file {
	char *name;
	char *file;   /* NULL: string */
	char *string; /* NULL: file */
};

/* A multiboot module (Banyan: boot-source "modules"): {"path": ..., "cmdline": ...}. */
struct vmcfg_module {
	char *path;
	char *cmdline; /* NULL: none */
};

/*
 * The drives are kept in guest order: the root device, if any, first
 * (/dev/vda, as Firecracker attaches it), then the others as added, so a
 * drive's index is its disk's (vdX, its default serial).
 */
struct vmcfg {
	/* boot-source */
	char *kernel_image_path; /* NULL until configured */
	char *initrd_path;
	char *boot_args;			     /* NULL: Banyan's default */
	struct vmcfg_module modules[VM_MAX_MODULES]; /* multiboot kernels only */
	unsigned int nmodules;
	/* machine-config */
	unsigned int vcpu_count;
	uint64_t mem_size_mib;
	bool smt;
	bool track_dirty_pages;
	enum on_reboot on_reboot; /* Banyan: "on_reboot": "Exit" or "Restart" */
	bool no_irqchip;	  /* Banyan, tests only: "no_irqchip" */
	/* guest memory backing (vmm/mem_backing.h): "huge_pages": "None" | "2M", and
	 * Banyan's "mem_mergeable" and "mem_prefault" */
	bool huge_pages_2m;
	bool mem_mergeable;
	bool mem_prefault;
	bool mem_shared; /* Banyan's "mem_shared": a memfd (same-host upgrades) */
	/* Banyan: "cpu_affinity", {"vcpu": "0-1", "io": "2"} as "vcpu=0-1;io=2" (util/parse.h) */
	char cpu_affinity[CPU_AFFINITY_LEN];
	/* machine-config "cpu_template" (named) or cpu-config (custom); NULL: none. Owned. */
	struct cpu_template *cpu_template;
	struct vmcfg_drive drives[VM_MAX_DISKS];
	unsigned int ndrives;
	struct vmcfg_net nets[VM_MAX_NETS];
	unsigned int nnets;
	bool has_vsock;
	uint32_t vsock_cid;
	char *vsock_uds_path;
	bool entropy;
	struct balloon_config balloon; /* "balloon"; .enabled when configured */
	struct vmcfg_device devices[VM_MAX_EXTRA_DEVICES];
	unsigned int ndevices;
	struct vmcfg_fw_file fw_files[VM_MAX_FW_CFG_FILES];
	unsigned int nfw_files;
	/* mmds-config (PUT /mmds/config); the cards are those whose nets[].mmds is set */
	bool has_mmds;
	unsigned int mmds_version; /* 1 or 2 (enum mmds_version) */
	uint32_t mmds_ipv4;	   /* host byte order */
	bool mmds_imds_compat;
	struct rl_config entropy_rate_limiter;
	/* logger and metrics */
	char *log_path;
	char log_level[8]; /* "" when never set */
	char *metrics_path;
	/* built by vmcfg_to_vm_config */
	char *cmdline;
	/* Paths a running VM's disks had before vmcfg_drive_set_path: a vm_config may still
	 * point at them, so they live as long as the document. */
	char **retired;
	unsigned int nretired;
};

/* vmcfg_init - the defaults: 1 vCPU, 256 MiB, nothing else. */
void vmcfg_init(struct vmcfg *c);

/* vmcfg_free - release the strings; @c may be reused after vmcfg_init. */
void vmcfg_free(struct vmcfg *c);

/* vmcfg_copy - make @dst (initialised or freed) a deep copy of @src. 0 or -ENOMEM. */
int vmcfg_copy(struct vmcfg *dst, const struct vmcfg *src) __attribute__((warn_unused_result));

/*
 * vmcfg_parse - parse @len bytes of JSON (strict, nesting and size capped)
 * into *@out. Returns 0, or -EINVAL with the reason in @err.
 */
int vmcfg_parse(const char *buf, size_t len, json_object **out, char *err);

/*
 * The sections. @patch: PATCH semantics (absent fields keep their value);
 * otherwise PUT (required fields must be present, others reset to their
 * defaults). @id is the {id} of the path (NULL from a config file). Each
 * returns 0 or -EINVAL with a fault_message in @err.
 */
int vmcfg_machine(struct vmcfg *c, json_object *body, bool patch, char *err);
int vmcfg_boot_source(struct vmcfg *c, json_object *body, char *err);
int vmcfg_drive(struct vmcfg *c, const char *id, json_object *body, bool patch, char *err);
int vmcfg_net(struct vmcfg *c, const char *id, json_object *body, bool patch, char *err);
int vmcfg_vsock(struct vmcfg *c, json_object *body, char *err);
int vmcfg_entropy(struct vmcfg *c, json_object *body, char *err);
/*
 * vmcfg_balloon - PUT /balloon (Firecracker's Balloon): amount_mib and
 * deflate_on_oom required, stats_polling_interval_s optional (0: no
 * statistics), Banyan's free_page_reporting optional (default true).
 */
int vmcfg_balloon(struct vmcfg *c, json_object *body, char *err);
/*
 * vmcfg_balloon_patch - check a PATCH /balloon body ({"amount_mib"},
 * @stats false) or PATCH /balloon/statistics
 * ({"stats_polling_interval_s"}, @stats true) against @c: the value in
 * *@value. Changes nothing. 0 or -EINVAL with a fault_message.
 */
int vmcfg_balloon_patch(const struct vmcfg *c, json_object *body, bool stats, uint32_t *value,
			char *err) __attribute__((warn_unused_result));
/* vmcfg_balloon_to_json - GET /balloon's and the document's "balloon": NULL when none. */
json_object *vmcfg_balloon_to_json(const struct vmcfg *c);
int vmcfg_logger(struct vmcfg *c, json_object *body, char *err);
int vmcfg_metrics(struct vmcfg *c, json_object *body, char *err);
/* vmcfg_device - add one opt-in device (an element of "devices"); each type at most once. */
int vmcfg_device(struct vmcfg *c, json_object *body, char *err);
/*
 * vmcfg_fw_cfg_file - add one fw_cfg user file (an element of
 * "fw_cfg_files"); the fw-cfg device is added with the first one. Names
 * start with "opt/" (QEMU's rule for user files), are unique, and at most
 * 55 bytes.
 */
int vmcfg_fw_cfg_file(struct vmcfg *c, json_object *body, char *err);
int vmcfg_mmds_config(struct vmcfg *c, json_object *body, char *err);
/*
 * vmcfg_cpu_config - PUT /cpu-config: Firecracker's custom CPU template
 * (cpu_template.h) replaces any template; one with no modifiers leaves
 * none. vmcfg_cpu_template_option - --cpu-template: a named template
 * (x86-64-v2, x86-64-v3, None) or a file holding a custom one.
 */
int vmcfg_cpu_config(struct vmcfg *c, json_object *body, char *err);
int vmcfg_cpu_template_option(struct vmcfg *c, const char *arg, char *err)
    __attribute__((warn_unused_result));

/* vmcfg_mmds_config_to_json - GET /vm/config's "mmds-config": NULL when not configured. */
json_object *vmcfg_mmds_config_to_json(const struct vmcfg *c);

/*
 * vmcfg_mmds_attach - serve the metadata store @m (may be NULL: none) on
 * the cards @c's mmds-config names: sets cfg->mmds and each card's mmds
 * fields, and gives @m the configured version. vmcfg_to_vm_config calls it
 * with cfg->mmds; a configuration taken from a snapshot needs it again.
 */
void vmcfg_mmds_attach(const struct vmcfg *c, struct vm_config *cfg, struct mmds *m);

/*
 * vmcfg_drive_live - check a PATCH /drives/{@id} body for a running VM:
 * the drive's index in guest order in *@index, the new path_on_host in
 * *@path (NULL when the body has none), its rate limiter as the body
 * leaves it in *@limit (vmcfg_rate_limiter's PATCH rule; the drive's own
 * when the body has none). Changes nothing. 0 or -EINVAL.
 */
int vmcfg_drive_live(struct vmcfg *c, const char *id, json_object *body, int *index,
		     const char **path, struct rl_config *limit, char *err)
    __attribute__((warn_unused_result));

/*
 * vmcfg_drive_set_path - drive @index now reads @path (its disk was
 * swapped). The old string stays valid until vmcfg_free. 0 or -ENOMEM.
 */
int vmcfg_drive_set_path(struct vmcfg *c, unsigned int index, const char *path)
    __attribute__((warn_unused_result));

/*
 * vmcfg_rate_limiter - Firecracker's RateLimiter object (@key of @body:
 * {"bandwidth": {"size", "one_time_burst", "refill_time"}, "ops": {...}},
 * every part optional; null or {} is no limit) into *@out. With @patch
 * (PATCH after boot) a bucket left out keeps its value in *@out, and one
 * with size 0 is removed. 0, or -EINVAL with a fault_message naming
 * @what and the field; *@out is unchanged on failure.
 */
int vmcfg_rate_limiter(json_object *body, const char *what, const char *key, bool patch,
		       struct rl_config *out, char *err);

/* vmcfg_rate_limiter_to_json - the object GET /vm/config shows; NULL when no limit. */
json_object *vmcfg_rate_limiter_to_json(const struct rl_config *c);

/* vmcfg_document - the whole VM (the --config file): replaces @c on success. */
int vmcfg_document(struct vmcfg *c, json_object *doc, char *err);

/* vmcfg_to_json - the whole VM (GET /vm/config); NULL when out of memory. */
json_object *vmcfg_to_json(const struct vmcfg *c);

/* vmcfg_machine_to_json - GET /machine-config. */
json_object *vmcfg_machine_to_json(const struct vmcfg *c);

/*
 * vmcfg_check_files - the kernel, initrd and drives can be read (checked
 * before a VM is started from @c). 0, or -EINVAL with a fault_message.
 */
int vmcfg_check_files(const struct vmcfg *c, char *err) __attribute__((warn_unused_result));

/*
 * vmcfg_to_vm_config - the one conversion from the document to what the
 * VMM runs: fill @cfg's machine fields (kernel, initrd, the command line
 * with the root device, vCPUs, memory, reboot action, disks in guest
 * order, rng, network cards, vsock) from @c, and point cfg->doc at @c.
 * Leaves console_out_fd, mem_path, restoring and mmds as they are. Opens and
 * checks no file (vmcfg_check_files does). Fails with a fault_message when
 * there is no kernel or memory runs out. @cfg points into @c afterwards.
 */
int vmcfg_to_vm_config(struct vmcfg *c, struct vm_config *cfg, char *err)
    __attribute__((warn_unused_result));

/* vmcfg_load_file - read and apply a --config file; 0 or -EINVAL with @err. */
int vmcfg_load_file(struct vmcfg *c, const char *path, char *err)
    __attribute__((warn_unused_result));

/*
 * vmcfg_check_memory - the one rule for a guest's RAM, shared by --memory,
 * --config and the API: @mib in VMCFG_MEM_MIN..VMCFG_MEM_MAX, and no more
 * than one allocation can ever get under the host's overcommit policy
 * (vm.overcommit_memory 0: RAM + swap; 2: CommitLimit; 1: no limit, the
 * operator's explicit choice to overcommit). Guest memory is mapped
 * lazily, so a larger guest would start and be OOM-killed later, taking
 * whatever else the host runs with it. 0, or -EINVAL with the reason
 * (without a prefix) in @err.
 */
int vmcfg_check_memory(uint64_t mib, char *err);

/* vmcfg_log_level - enum log_level for a logger level name; -1 if unknown. */
int vmcfg_log_level(const char *name);

#endif
