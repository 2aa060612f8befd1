/* `banyan run`: boot a VM in the foreground with its console on stdio. */
#include "cli/cli.h"

#include "api/api.h"
#include "api/clones.h"
#include "cli/affinity_option.h"
#include "mmds/mmds.h"
#include "cli/disk_option.h"
#include "cli/guest_option.h"
#include "cli/net_option.h"
#include "cli/balloon_option.h"
#include "cli/limit_option.h"
#include "cli/memory_option.h"
#include "cli/named.h"
#include "security/seccomp.h"
#include "migration/migration.h"
#include "migration/postcopy.h"
#include "snapshot/snapshot.h"
#include "util/file.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/notify.h"
#include "util/parse.h"
#include "vmm/console.h"
#include "vmm/console_sock.h"
#include "vmm/event_loop.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

struct run_ctx {
	struct vm_config cfg;
	struct event_loop loop;
	struct console con;
	struct event_handler sig_handler;
	struct event_handler exit_handler;
	struct vm *vm;
	int quit_signal;
	bool vm_stopped;
	/* The control plane (--api-socket, --config); see run_api_* below. */
	const char *api_path;
	const char *config_path;
	const char *machine_opt;       /* first option that describes the machine */
	struct vmcfg spec;	       /* the machine: options, --config or the API fill it */
	const char *boot[3];	       /* --kernel, (unused), --cmdline: the boot-source */
	char *initrds[VM_MAX_MODULES]; /* every --initrd, in order */
	unsigned int ninitrds;
	json_object *reboot; /* --on-reboot, --no-irqchip: a machine-config patch */
	struct api_ctl ctl;
	struct api_server *api;
	struct event_handler start_handler;
	bool start_pending; /* InstanceStart waits for the run loop */
	bool api_quit;	    /* stop asked through the API before boot */
	bool from_api;	    /* the current config came from InstanceStart */
	bool create_failed; /* vm_create failed (the API was told why) */
	/* Restoring a snapshot (banyan restore, PUT /snapshot/load); see run_create_vm. */
	struct snapshot_image *img;	 /* the opened chain (owned), or NULL */
	bool restore_pending;		 /* the next VM comes from img, not from the kernel */
	bool start_paused;		 /* restored VMs wait for a resume */
	bool resume_on_start;		 /* the restored VM (paused) runs once its vCPUs started */
	int clone_index;		 /* -1, or which clone this process runs */
	uint64_t restore_t0;		 /* when the restore began (now_ns); 0: logged */
	struct snapshot_lineage lineage; /* the current VM's (snapshots through the API) */
	enum sandbox_mode sandbox;	 /* --seccomp */
	bool boot_timer;		 /* --boot-timer: whatever describes the machine */
	/* --incoming: the first VM comes from a migration stream; see run_incoming. */
	const char *incoming;
	bool incoming_pending;
	bool mem_given, cpus_given;	     /* --memory, --cpus: what the incoming VM must have */
	const char *taps[VM_MAX_NETS + 1];   /* --incoming-tap ID=TAP */
	const char *disks[VM_MAX_DISKS + 1]; /* --incoming-disk ID=PATH */
	unsigned int ntaps, ndisks;
	struct mig_tls_paths tls;      /* --tls-cert, --tls-key, --tls-ca */
	struct vmcfg mig_doc;	       /* the migrated machine, which the VM's config points into */
	struct mig_postcopy *postcopy; /* its pages still coming (post-copy); freed before the VM */
	struct mmds *mmds; /* the metadata store: made by run_main, kept across VMs and loads */
	/* --name, --detach: the VM's runtime directory (cli/named.h); see run_named. */
	const char *name;
	bool detach;
	bool log_given;		  /* --log-file: the log does not go to vm.log */
	int name_fd;		  /* the pid file's lock, or -1 */
	int ready_fd;		  /* --detach: the parent waits for "R" or a reason here; or -1 */
	int console_in_fd;	  /* the console's input: stdin, or the console socket's pipe */
	int log_fd;		  /* vm.log, for the console socket's copy; or -1 */
	struct consock *consock;  /* the console socket, or NULL */
	char api_buf[NAMED_PATH]; /* ROOT/NAME/api.sock */
	int notify_fd;		  /* $NOTIFY_SOCKET until READY=1 is sent, else negative */
	int started_fd;		  /* a clone's: its supervisor counts the clones running; or -1 */
};

static void run_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: banyan run --kernel PATH [options]\n"
	    "       banyan run --config FILE [--api-socket PATH] [options]\n"
	    "       banyan run --api-socket PATH [options]\n"
	    "  --kernel PATH        bzImage or ELF vmlinux (PVH entry when present)\n"
	    "  --initrd PATH[,cmdline=TEXT]\n"
	    "                       initial ramdisk; repeatable for a multiboot kernel,\n"
	    "                       each one a module with its own command line\n"
	    "  --cmdline STR        kernel command line (default \"" VMCFG_DEFAULT_BOOT_ARGS "\")\n"
	    "  --cpus N             vCPUs, 1..%d (default %d)\n"
	    "  --memory SIZE[,hugepages=2M][,mergeable][,prefault][,shared]\n"
	    "                       guest RAM, e.g. 512M, 2G; no suffix means MiB (default %dM);\n"
	    "                       on 2 MiB huge pages, merged by KSM, faulted in before boot,\n"
	    "                       in a memfd (upgradable without copying: docs/migration.md)\n"
	    "  --on-reboot ACTION   exit (default) or restart\n"
	    "  --log-level LEVEL    error, warn, info (default), debug\n"
	    "  --log-format FORMAT  text (default) or json (one object per line)\n"
	    "  --disk path=FILE[,id=NAME][,ro][,cache=writeback|none][,overlay=FILE]\n"
	    "                       a virtio-blk disk on a raw image (repeatable); with\n"
	    "                       overlay=, FILE is only read and writes go to the overlay\n"
	    "  --rng[=LIMITS]       a virtio-rng entropy device\n"
	    "  --balloon[=amount=MIB][,deflate_on_oom][,stats=SECS][,reporting=on|off]\n"
	    "                       a virtio-balloon; free page reporting is on by default\n"
	    "  --cpu-affinity vcpu=CPUS[,vcpuN=CPUS][,io=CPUS]\n"
	    "                       pin vCPU threads and device threads to host CPUs\n"
	    "  --net tap=NAME[,mac=MAC][,id=ID][,rx_LIMITS][,tx_LIMITS]\n"
	    "                       a virtio-net card on an existing TAP (repeatable)\n"
	    "  LIMITS (rate limiters, --disk too): bw=SIZE/TIME,bw_burst=SIZE,ops=N/TIME,\n"
	    "                       ops_burst=N, e.g. bw=10M/100ms,ops=1000/1s\n"
	    "  --vsock cid=N,socket=PATH\n"
	    "                       a virtio-vsock device; host side on Unix sockets\n"
	    "  --device NAME[,iobase=PORT][,iosize=N]\n"
	    "                       debug-exit (a test kernel's exit status), testdev,\n"
	    "                       fw-cfg (QEMU's firmware configuration) or boot-timer\n"
	    "                       (the guest's write of 123 at 0xc0000000 is timed)\n"
	    "  --boot-timer         the boot timer, also with --config or the API\n"
	    "  --fw-cfg name=opt/NAME,file=PATH|string=TEXT\n"
	    "                       a fw_cfg user file (repeatable)\n"
	    "  --cpu-template NAME|FILE\n"
	    "                       the CPU the guest sees: x86-64-v2, x86-64-v3, or a\n"
	    "                       Firecracker custom template (JSON) in FILE\n"
	    "  --config FILE        the whole VM as JSON (the schema of GET /vm/config)\n"
	    "  --api-socket PATH    serve the API there; without --kernel or --config,\n"
	    "                       wait for the configuration and InstanceStart\n"
	    "  --name NAME          a named VM: API, console socket, log and pid in its\n"
	    "                       runtime directory (docs/operations.md); the console\n"
	    "                       is then console.sock (banyan console NAME)\n"
	    "  --detach             with --name: start in the background and return once\n"
	    "                       the VM runs (status 2 and the reason if it cannot)\n"
	    "  --log-file PATH      log there (appended) instead of stderr\n"
	    "  --console-queue SIZE console output held for a slow reader before it is\n"
	    "                       dropped, e.g. 64K (default 1M; 4K..64M)\n"
	    "  --seccomp MODE       per-thread system call filters: strict (default; a\n"
	    "                       forbidden call ends the process, status 148), log, off\n"
	    "  --incoming URL       receive a live migration on tcp:HOST:PORT or unix:PATH\n"
	    "                       and run the VM it brings (--memory and --cpus, when\n"
	    "                       given, are what it must have)\n"
	    "  --incoming-tap ID=TAP, --incoming-disk ID=PATH\n"
	    "                       the migrated VM's interface ID uses TAP here, its drive\n"
	    "                       ID the file PATH (default: the source's names)\n"
	    "  --tls-cert FILE --tls-key FILE --tls-ca FILE\n"
	    "                       with --incoming tcp:...: TLS 1.3, this side's certificate\n"
	    "                       and key, and the CA the source's must chain to (PEM)\n"
	    "The console is the terminal: Ctrl-A x quits, Ctrl-A h lists the keys.\n",
	    VM_MAX_CPUS, VMCFG_DEFAULT_VCPUS, VMCFG_DEFAULT_MEM_MIB);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "banyan run: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see banyan run --help)\n");
	return -EINVAL;
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_ON_REBOOT,
	OPT_LOG_LEVEL,
	OPT_NO_IRQCHIP,
	OPT_HELP,
	OPT_DISK,
	OPT_RNG,
	OPT_BALLOON,
	OPT_CONFIG,
	OPT_API_SOCKET,
	OPT_LOG_FILE,
	OPT_NET,
	OPT_VSOCK,
	OPT_CONSOLE_QUEUE,
	OPT_CPU_AFFINITY,
	OPT_DEVICE,
	OPT_FW_CFG,
	OPT_CPU_TEMPLATE,
	OPT_SECCOMP,
	OPT_INCOMING,
	OPT_INCOMING_TAP,
	OPT_INCOMING_DISK,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CA,
	OPT_BOOT_TIMER,
	OPT_NAME,
	OPT_DETACH,
	OPT_LOG_FORMAT
};

static const struct option run_options[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"on-reboot", required_argument, NULL, OPT_ON_REBOOT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"no-irqchip", no_argument, NULL, OPT_NO_IRQCHIP}, /* tests: HLT reaches user space */
    {"help", no_argument, NULL, OPT_HELP},
    {"disk", required_argument, NULL, OPT_DISK},
    {"rng", optional_argument, NULL, OPT_RNG},
    {"balloon", optional_argument, NULL, OPT_BALLOON},
    {"net", required_argument, NULL, OPT_NET},
    {"vsock", required_argument, NULL, OPT_VSOCK},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"api-socket", required_argument, NULL, OPT_API_SOCKET},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"console-queue", required_argument, NULL, OPT_CONSOLE_QUEUE},
    {"cpu-affinity", required_argument, NULL, OPT_CPU_AFFINITY},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"fw-cfg", required_argument, NULL, OPT_FW_CFG},
    {"cpu-template", required_argument, NULL, OPT_CPU_TEMPLATE},
    {"seccomp", required_argument, NULL, OPT_SECCOMP},
    {"incoming", required_argument, NULL, OPT_INCOMING},
    {"incoming-tap", required_argument, NULL, OPT_INCOMING_TAP},
    {"incoming-disk", required_argument, NULL, OPT_INCOMING_DISK},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"boot-timer", no_argument, NULL, OPT_BOOT_TIMER},
    {"name", required_argument, NULL, OPT_NAME},
    {"detach", no_argument, NULL, OPT_DETACH},
    {NULL, 0, NULL, 0},
};

const struct option *cmd_run_options(void)
{
	return run_options;
}

static int parse_log_level(const char *s)
{
	int level = log_level_from_name(s);

	if (level < 0)
		return usage_error("unknown log level '%s'", s);
	log_set_level((enum log_level)level);
	return 0;
}

/* Set @key of machine-config to @v through the API's PATCH; -EINVAL after printing why. */
static int machine_patch(struct vmcfg *c, const char *opt, const char *key, json_object *v)
{
	json_object *body = json_object_new_object();
	char err[VMCFG_ERR_LEN] = "out of memory";
	int ret = -EINVAL;

	if (body) {
		json_object_object_add(body, key, v);
		ret = vmcfg_machine(c, body, true, err);
		json_object_put(body);
	}
	return ret < 0 ? usage_error("--%s: %s", opt, err) : 0;
}

/* One of the --disk, --net, --vsock parsers; its reason is printed. */
static int device_option(int (*parse)(struct vmcfg *, char *, char *, size_t), struct vmcfg *c,
			 char *arg)
{
	char err[VMCFG_ERR_LEN + 64];

	return parse(c, arg, err, sizeof(err)) < 0 ? usage_error("%s", err) : 0;
}

/* A machine option: it fills ctx->spec through the sections' setters, as the API would. */
static int parse_run_option(struct run_ctx *ctx, int opt, char *arg)
{
	struct vmcfg *c = &ctx->spec;
	uint64_t v;

	switch (opt) {
	case OPT_INITRD:
		if (ctx->ninitrds == VM_MAX_MODULES)
			return usage_error("at most %d --initrd", VM_MAX_MODULES);
		ctx->initrds[ctx->ninitrds++] = arg;
		return 0;
	case OPT_KERNEL:
	case OPT_CMDLINE:
		ctx->boot[opt - OPT_KERNEL] = arg; /* one boot-source, once every option is read */
		return 0;
	case OPT_CPUS:
		ctx->cpus_given = true;
		if (parse_uint(arg, 0, UINT32_MAX, &v) < 0)
			return usage_error("--cpus '%s' is not a number", arg);
		return machine_patch(c, "cpus", "vcpu_count", json_object_new_int64((int64_t)v));
	case OPT_MEMORY:
		ctx->mem_given = true;
		return device_option(memory_option_parse, c, arg);
	case OPT_DISK:
		return device_option(disk_option_parse, c, arg);
	case OPT_NET:
		return device_option(net_option_parse, c, arg);
	case OPT_VSOCK:
		return device_option(vsock_option_parse, c, arg);
	case OPT_DEVICE:
		return device_option(device_option_parse, c, arg);
	case OPT_FW_CFG:
		return device_option(fw_cfg_option_parse, c, arg);
	case OPT_RNG:
		return device_option(rng_option_parse, c, arg);
	case OPT_CPU_TEMPLATE: {
		char err[VMCFG_ERR_LEN];

		return vmcfg_cpu_template_option(c, arg, err) < 0 ? usage_error("%s", err) : 0;
	}
	case OPT_BALLOON:
		return device_option(balloon_option_parse, c, arg);
	case OPT_CPU_AFFINITY:
		return device_option(affinity_option_parse, c, arg);
	default:
		return -EINVAL;
	}
}

/* --on-reboot and --no-irqchip: kept aside, they apply over --config too. */
static int parse_reboot_option(struct run_ctx *ctx, int opt, const char *arg)
{
	if (!ctx->reboot && !(ctx->reboot = json_object_new_object()))
		return usage_error("out of memory");
	if (opt == OPT_NO_IRQCHIP) {
		json_object_object_add(ctx->reboot, "no_irqchip", json_object_new_boolean(true));
		return 0;
	}
	if (strcmp(arg, "exit") && strcmp(arg, "restart"))
		return usage_error("--on-reboot takes exit or restart, not '%s'", arg);
	json_object_object_add(ctx->reboot, "on_reboot",
			       json_object_new_string(strcmp(arg, "exit") ? "Restart" : "Exit"));
	return 0;
}

static const char *log_file_error(int ret)
{
	return ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG | FILE_KIND_FIFO)
				  : strerror(-ret);
}

/* --console-queue: a plain number is bytes here, not MiB. */
static int parse_console_queue(const char *arg)
{
	uint64_t v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end) {
		if (parse_size(arg, &v) < 0)
			return usage_error("bad --console-queue size '%s' (use e.g. 64K or 1M)",
					   arg);
	}
	if (v < CONSOLE_OUT_MIN || v > CONSOLE_OUT_MAX)
		return usage_error("--console-queue '%s' out of range (4K..64M)", arg);
	console_set_out_bytes((size_t)v);
	return 0;
}

static const char *option_name(int opt)
{
	const struct option *o;

	for (o = run_options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

/* --incoming and its overrides ("ID=VALUE", checked against the machine when it comes). */
static int parse_incoming_option(struct run_ctx *ctx, int opt, const char *arg)
{
	char *tls = opt == OPT_TLS_CERT	 ? ctx->tls.cert
		    : opt == OPT_TLS_KEY ? ctx->tls.key
		    : opt == OPT_TLS_CA	 ? ctx->tls.ca
					 : NULL;

	if (opt == OPT_INCOMING) {
		ctx->incoming = arg;
		return 0;
	}
	if (tls) {
		if (!arg[0] || strlen(arg) >= MIG_TLS_PATH_MAX)
			return usage_error("--%s: a path of 1..%d bytes", option_name(opt),
					   MIG_TLS_PATH_MAX - 1);
		snprintf(tls, MIG_TLS_PATH_MAX, "%s", arg);
		return 0;
	}
	if (!strchr(arg, '=') || arg[0] == '=')
		return usage_error("--%s takes ID=%s, not '%s'", option_name(opt),
				   opt == OPT_INCOMING_TAP ? "TAP" : "PATH", arg);
	if (opt == OPT_INCOMING_TAP && ctx->ntaps < VM_MAX_NETS)
		ctx->taps[ctx->ntaps++] = arg;
	else if (opt == OPT_INCOMING_DISK && ctx->ndisks < VM_MAX_DISKS)
		ctx->disks[ctx->ndisks++] = arg;
	else
		return usage_error("too many --%s options", option_name(opt));
	return 0;
}

/* Options about the process rather than the machine; *@done when @opt was one. */
static int parse_process_option(struct run_ctx *ctx, int opt, const char *arg, bool *done)
{
	int ret;

	*done = true;
	switch (opt) {
	case OPT_CONFIG:
		ctx->config_path = arg;
		return 0;
	case OPT_API_SOCKET:
		ctx->api_path = arg;
		return 0;
	case OPT_NAME:
		ctx->name = arg;
		return named_check(arg) < 0
			   ? usage_error("bad VM name '%s': 1 to %d of A-Z a-z 0-9 _ . -, "
					 "beginning with a letter or digit",
					 arg, NAMED_MAX)
			   : 0;
	case OPT_DETACH:
		ctx->detach = true;
		return 0;
	case OPT_LOG_FILE:
		ctx->log_given = true;
		ret = log_open_file(arg);
		return ret < 0
			   ? usage_error("cannot open log file %s: %s", arg, log_file_error(ret))
			   : 0;
	case OPT_CONSOLE_QUEUE:
		return parse_console_queue(arg);
	case OPT_SECCOMP:
		return sandbox_mode_parse(arg, &ctx->sandbox) < 0
			   ? usage_error("--seccomp takes strict, log or off, not '%s'", arg)
			   : 0;
	case OPT_LOG_LEVEL:
		return parse_log_level(arg);
	case OPT_BOOT_TIMER:
		ctx->boot_timer = true;
		return 0;
	case OPT_LOG_FORMAT:
		return log_set_format(arg) < 0
			   ? usage_error("--log-format takes text or json, not '%s'", arg)
			   : 0;
	case OPT_ON_REBOOT:
	case OPT_NO_IRQCHIP:
		return parse_reboot_option(ctx, opt, arg);
	case OPT_INCOMING:
	case OPT_INCOMING_TAP:
	case OPT_INCOMING_DISK:
	case OPT_TLS_CERT:
	case OPT_TLS_KEY:
	case OPT_TLS_CA:
		return parse_incoming_option(ctx, opt, arg);
	default:
		*done = false;
		if (!ctx->machine_opt)
			ctx->machine_opt = option_name(opt);
		return 0;
	}
}

/* --config: the machine comes from the file; its logger applies now. */
static int load_config_file(struct run_ctx *ctx)
{
	char err[VMCFG_ERR_LEN];
	int lvl, ret;

	if (ctx->machine_opt)
		return usage_error("--%s cannot be combined with --config (the file describes "
				   "the whole VM)",
				   ctx->machine_opt);
	if (vmcfg_load_file(&ctx->spec, ctx->config_path, err) < 0 ||
	    vmcfg_check_files(&ctx->spec, err) < 0)
		return usage_error("--config %s: %s", ctx->config_path, err);
	if (ctx->spec.log_path && (ret = log_open_file(ctx->spec.log_path)) < 0)
		return usage_error("cannot open log file %s: %s", ctx->spec.log_path,
				   log_file_error(ret));
	lvl = ctx->spec.log_level[0] ? vmcfg_log_level(ctx->spec.log_level) : -1;
	if (lvl >= 0)
		log_set_level((enum log_level)lvl);
	return 0;
}

/* --kernel, --initrd, --cmdline: the boot-source, as PUT /boot-source would set it. */
static int apply_boot_options(struct run_ctx *ctx)
{
	static const char *const keys[] = {"kernel_image_path", "initrd_path", "boot_args"};
	json_object *body = json_object_new_object();
	char err[VMCFG_ERR_LEN] = "out of memory";
	int ret = -ENOMEM;

	for (unsigned int i = 0; body && i < 3; i++)
		if (ctx->boot[i])
			json_object_object_add(body, keys[i], json_object_new_string(ctx->boot[i]));
	if (body)
		ret = initrd_options_body(body, ctx->initrds, ctx->ninitrds, err, sizeof(err));
	if (ret == 0)
		ret = vmcfg_boot_source(&ctx->spec, body, err);
	json_object_put(body);
	if (ret < 0)
		return usage_error("%s", err);
	/* Before KVM, by type and without opening: a FIFO would block the open. */
	return vmcfg_check_files(&ctx->spec, err) < 0 ? usage_error("%s", err) : 0;
}

/* The machine is described: --on-reboot and --no-irqchip go on top, then what the VMM runs. */
static int finish_spec(struct run_ctx *ctx)
{
	char err[VMCFG_ERR_LEN] = "out of memory";

	if (ctx->reboot && vmcfg_machine(&ctx->spec, ctx->reboot, true, err) < 0)
		return usage_error("%s", err);
	if (!ctx->spec.kernel_image_path)
		return 0; /* configured and started through the API */
	return vmcfg_to_vm_config(&ctx->spec, &ctx->cfg, err) < 0 ? usage_error("%s", err) : 0;
}

/* --incoming: the machine comes from the stream; only what it must have may be given. */
static int check_incoming_args(struct run_ctx *ctx)
{
	const struct vmcfg *c = &ctx->spec;

	if (!ctx->incoming)
		return usage_error("--incoming-tap, --incoming-disk and --tls-* need --incoming");
	if (ctx->config_path || ctx->boot[0] || ctx->boot[1] || ctx->boot[2] || ctx->reboot ||
	    c->ndrives || c->nnets || c->has_vsock || c->entropy)
		return usage_error("--incoming takes the machine from the migration stream: only "
				   "--memory and --cpus may describe it");
	ctx->incoming_pending = true;
	return 0;
}

/* Returns 0, 1 for --help, or -EINVAL after printing one line. */
static int parse_run_args(struct run_ctx *ctx, int argc, char **argv)
{
	bool done;
	int opt, ret;

	ctx->cfg = (struct vm_config){.console_out_fd = STDOUT_FILENO};
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", run_options, NULL)) != -1) {
		if (opt == OPT_HELP)
			return 1;
		if (opt == '?')
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		ret = parse_process_option(ctx, opt, optarg, &done);
		if (ret == 0 && !done)
			ret = parse_run_option(ctx, opt, optarg);
		if (ret < 0)
			return ret;
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (ctx->detach && !ctx->name)
		return usage_error("--detach needs --name (the VM is then reached by its name)");
	if (ctx->name && !ctx->api_path) {
		if (named_path(ctx->name, NAMED_API, ctx->api_buf, sizeof(ctx->api_buf)) < 0)
			return usage_error("the runtime directory's path is too long");
		ctx->api_path = ctx->api_buf;
	}
	if (ctx->incoming || ctx->ntaps || ctx->ndisks || mig_tls_wanted(&ctx->tls))
		return check_incoming_args(ctx);
	if (ctx->config_path)
		return load_config_file(ctx) ?: finish_spec(ctx);
	if (!ctx->boot[0] && ctx->api_path && !ctx->machine_opt)
		return finish_spec(ctx); /* configured and started through the API */
	if (!ctx->boot[0])
		return usage_error("%s", ctx->api_path ? "--kernel is required when machine "
							 "options are given"
						       : "--kernel is required");
	return apply_boot_options(ctx) ?: finish_spec(ctx);
}

static void on_signal(struct event_handler *h, uint32_t events)
{
	struct run_ctx *ctx = container_of(h, struct run_ctx, sig_handler);
	struct signalfd_siginfo si;

	(void)events;
	if (read(h->fd, &si, sizeof(si)) != sizeof(si))
		return;
	ctx->quit_signal = (int)si.ssi_signo;
	ctx->api_quit = true; /* a VMM still waiting for InstanceStart exits too */
	if (ctx->vm)
		vm_request_exit(ctx->vm, VM_EXIT_USER, "stopped by a signal");
}

static void on_vm_exit(struct event_handler *h, uint32_t events)
{
	struct run_ctx *ctx = container_of(h, struct run_ctx, exit_handler);
	uint64_t v;

	(void)events;
	if (read(h->fd, &v, sizeof(v)) < 0)
		(void)0; /* nonblocking: already drained is fine */
	ctx->vm_stopped = true;
}

/* SIGINT/SIGTERM/SIGHUP stop the VM cleanly through the event loop. */
static int run_setup_signals(struct run_ctx *ctx)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	/* Blocked here, so every vCPU thread inherits the mask too. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill the VMM */
	ctx->sig_handler.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	ctx->sig_handler.fn = on_signal;
	if (ctx->sig_handler.fd < 0)
		return -errno;
	return event_loop_add(&ctx->loop, &ctx->sig_handler, EPOLLIN);
}

static int exit_status(const struct run_ctx *ctx, const struct vm *vm, enum vm_exit reason)
{
	switch (reason) {
	case VM_EXIT_GUEST_STATUS:
		return vm->guest_status;
	case VM_EXIT_POWEROFF:
	case VM_EXIT_REBOOT:
	case VM_EXIT_MIGRATED:
		return EXIT_GUEST_OK;
	case VM_EXIT_CRASH:
		return EXIT_GUEST_CRASH;
	case VM_EXIT_HALTED:
		return EXIT_GUEST_HALTED;
	case VM_EXIT_USER:
		return ctx->quit_signal ? EXIT_SIGNAL_BASE + ctx->quit_signal : EXIT_GUEST_OK;
	default:
		return EXIT_HOST_ERROR;
	}
}

static void log_vm_exit(struct vm *vm, enum vm_exit reason)
{
	if (reason == VM_EXIT_CRASH || reason == VM_EXIT_HOST_ERROR)
		log_error("VM stopped (%s): %s", vm_exit_name(reason), vm->exit_detail);
	else if (reason == VM_EXIT_REBOOT) /* a guest can reboot in a loop (--on-reboot restart) */
		log_guest_info(NULL, "VM stopped (%s): %s", vm_exit_name(reason), vm->exit_detail);
	else
		log_info("VM stopped (%s): %s", vm_exit_name(reason), vm->exit_detail);
}

/* --incoming: the VM comes from a migration stream (only once: a reboot boots afresh). */
static int run_incoming(struct run_ctx *ctx)
{
	struct mig_incoming_opts o = {.url = ctx->incoming,
				      .cancel_fd = ctx->sig_handler.fd,
				      .console_out_fd = ctx->cfg.console_out_fd,
				      .mem_mib =
					  ctx->mem_given ? (unsigned int)ctx->spec.mem_size_mib : 0,
				      .ncpus = ctx->cpus_given ? ctx->spec.vcpu_count : 0,
				      .taps = ctx->taps,
				      .disks = ctx->disks,
				      .postcopy = &ctx->postcopy,
				      .tls = &ctx->tls};
	char err[MIG_ERR_LEN];
	int ret;

	ctx->incoming_pending = false;
	ret = mig_incoming(&o, &ctx->mig_doc, &ctx->vm, err);
	if (ret < 0) {
		log_error("incoming migration: %s", err);
		return ret;
	}
	/* GET /vm/config shows the migrated machine from now on. */
	if (ctx->api)
		pthread_mutex_lock(&ctx->ctl.lock);
	vmcfg_free(&ctx->spec);
	if (vmcfg_copy(&ctx->spec, &ctx->mig_doc) < 0)
		log_warn("GET /vm/config will not show the migrated machine");
	ctx->ctl.incoming_pc = ctx->postcopy; /* GET /banyan/v1/migrate follows it here */
	if (ctx->api)
		pthread_mutex_unlock(&ctx->ctl.lock);
	ctx->cfg = ctx->vm->cfg;
	ctx->cfg.restoring = false;
	ctx->resume_on_start = false; /* it runs already: mig_incoming resumed it */
	log_info("VM migrated in from %s", ctx->incoming);
	return 0;
}

/* --boot-timer: the device, unless the machine's description has it already. */
static void run_add_boot_timer(struct vm_config *cfg)
{
	for (unsigned int i = 0; i < cfg->nextra; i++)
		if (cfg->extra[i].kind == EXTRA_BOOT_TIMER)
			return;
	/* Each kind at most once (vmcfg_device), so there is room for this one. */
	if (cfg->nextra < VM_MAX_EXTRA_DEVICES)
		cfg->extra[cfg->nextra++] = (struct extra_device_config){.kind = EXTRA_BOOT_TIMER};
}

/*
 * The API's start, begun in run_api_open, is done: before the guest runs
 * (a VM whose API cannot serve never runs) and before waiting on a client
 * or a migration. Until then it overlapped building the VM.
 */
static int run_api_serving(struct run_ctx *ctx)
{
	if (ctx->api && api_server_wait(ctx->api) < 0)
		return -EIO;
	return 0;
}

/* Boot a VM from the kernel, or restore one from ctx->img (only once: a reboot boots afresh). */
static int run_create_vm(struct run_ctx *ctx)
{
	struct snapshot_restore_opts o = {.console_out_fd = ctx->cfg.console_out_fd,
					  .lineage = &ctx->lineage};
	char err[SNAP_ERR_LEN];
	int ret;

	ctx->resume_on_start = false;
	ctx->lineage = (struct snapshot_lineage){0}; /* a new VM: no snapshot of it yet */
	if (ctx->incoming_pending)		     /* the API follows the migration in */
		return run_api_serving(ctx) < 0 ? -EIO : run_incoming(ctx);
	if (!ctx->restore_pending) {
		if (ctx->boot_timer)
			run_add_boot_timer(&ctx->cfg);
		return vm_create(&ctx->cfg, &ctx->vm);
	}
	ctx->restore_pending = false;
	ret = snapshot_restore(ctx->img, &o, &ctx->vm, err);
	if (ret < 0) {
		log_error("cannot restore the snapshot: %s", err);
		return ret;
	}
	ctx->cfg = ctx->vm->cfg;
	ctx->cfg.mem_path = NULL;
	ctx->cfg.restoring = false;
	/* Restored paused, devices too: the vCPU threads start at their pause point. */
	ctx->resume_on_start = !ctx->start_paused;
	log_info("VM restored from %s%s", snapshot_manifest(ctx->img)->id,
		 ctx->start_paused ? " (paused)" : "");
	return 0;
}

/*
 * How long the restore took (docs/performance.md): wall time since it began
 * and this process's CPU time (a clone's starts at its fork), once.
 */
static void log_restore_time(struct run_ctx *ctx)
{
	struct timespec cpu = {0};

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	log_info("VM %s %.2f ms after the restore began (%.2f ms of CPU)",
		 ctx->resume_on_start ? "running" : "ready",
		 (double)(now_ns() - ctx->restore_t0) / 1e6, (double)ts_to_ns(&cpu) / 1e6);
	ctx->restore_t0 = 0;
}

/*
 * --detach: tell the waiting parent the VM runs (@err NULL) or why it
 * cannot: "R", or the reason's text.
 */
static void run_ready(struct run_ctx *ctx, const char *err)
{
	const char *msg = err ? err : "R";

	if (ctx->ready_fd < 0)
		return;
	if (err && !err[0])
		msg = "the VMM stopped before the VM ran (see banyan logs)";
	if (write(ctx->ready_fd, msg, strlen(msg)) < 0)
		(void)0; /* the parent is gone: nobody to tell */
	close(ctx->ready_fd);
	ctx->ready_fd = -1;
}

/* The guest runs: tell the service manager (Type=notify), once per process. */
static void run_notify_ready(struct run_ctx *ctx)
{
	int ret;

	if (ctx->notify_fd < 0)
		return;
	ret = notify_send(ctx->notify_fd, "READY=1");
	if (ret < 0)
		log_warn("cannot tell the service manager the VM runs: %s", strerror(-ret));
	close(ctx->notify_fd);
	ctx->notify_fd = -1;
}

/* A clone runs: one byte to its supervisor's count (banyan restore --clones), once. */
static void run_started(struct run_ctx *ctx)
{
	if (ctx->started_fd < 0)
		return;
	if (write(ctx->started_fd, "R", 1) < 0)
		(void)0; /* the supervisor is gone: nobody counts */
	close(ctx->started_fd);
	ctx->started_fd = -1;
}

/* Boot one VM and wait until it stops; returns why. */
static enum vm_exit run_one_vm(struct run_ctx *ctx, int *status)
{
	enum vm_exit reason;

	ctx->create_failed = false;
	if (run_create_vm(ctx) < 0 || run_api_serving(ctx) < 0) {
		vm_destroy(ctx->vm); /* built, but its API cannot serve */
		ctx->vm = NULL;
		ctx->create_failed = true;
		if (ctx->api)
			api_vm_started(&ctx->ctl, NULL, log_last_error());
		*status = EXIT_USAGE;
		return VM_EXIT_HOST_ERROR;
	}
	ctx->exit_handler.fd = ctx->vm->exit_fd;
	ctx->exit_handler.fn = on_vm_exit;
	ctx->vm_stopped = false;
	if (event_loop_add(&ctx->loop, &ctx->exit_handler, EPOLLIN) < 0 || vm_start(ctx->vm) < 0) {
		vm_request_exit(ctx->vm, VM_EXIT_HOST_ERROR, "cannot start the VM");
	} else {
		if (ctx->resume_on_start)
			vm_resume(ctx->vm); /* devices, then vCPUs */
		run_ready(ctx, NULL);	    /* the vCPUs run */
		run_notify_ready(ctx);
		run_started(ctx);
	}
	if (ctx->restore_t0)
		log_restore_time(ctx);
	if (ctx->api)
		api_vm_started(&ctx->ctl, ctx->vm, NULL);
	console_attach(&ctx->con, ctx->vm);
	while (!ctx->vm_stopped) {
		if (event_loop_run_once(&ctx->loop, console_poll_ms(&ctx->con)) < 0)
			vm_request_exit(ctx->vm, VM_EXIT_HOST_ERROR, "event loop failed");
		console_flush(&ctx->con);
	}
	reason = vm_join(ctx->vm);
	if (ctx->api)
		api_vm_stopped(&ctx->ctl, !(reason == VM_EXIT_REBOOT &&
					    ctx->cfg.on_reboot == ON_REBOOT_RESTART));
	console_attach(&ctx->con, NULL);
	event_loop_del(&ctx->loop, &ctx->exit_handler);
	log_vm_exit(ctx->vm, reason);
	*status = exit_status(ctx, ctx->vm, reason);
	if (ctx->api)
		pthread_mutex_lock(&ctx->ctl.lock);
	ctx->ctl.incoming_pc = NULL;
	if (ctx->api)
		pthread_mutex_unlock(&ctx->ctl.lock);
	mig_pc_free(ctx->postcopy); /* its threads place pages in this VM's memory */
	ctx->postcopy = NULL;
	vm_destroy(ctx->vm);
	ctx->vm = NULL;
	return reason;
}

static void warn_if_pvm(void)
{
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		log_warn("this host's KVM is PVM: only PVM-enabled guest kernels run at full "
			 "speed here; stock kernels are emulated instruction by instruction");
}

static void on_api_start(struct event_handler *h, uint32_t events)
{
	struct run_ctx *ctx = container_of(h, struct run_ctx, start_handler);
	bool quit;

	(void)events;
	ctx->start_pending = api_take_start(&ctx->ctl, &quit);
	ctx->api_quit |= quit;
}

/*
 * GnuTLS, before any sandbox (which forbids mapping code). A failed load
 * is reported when TLS is asked for (mig_tls_load).
 */
static void load_tls(void)
{
	(void)mig_tls_lib_load();
}

/*
 * What serving the API needs before any sandbox, done on the API's
 * starting thread while the VM is built: GnuTLS, for a process the API
 * can ask to migrate over TLS, and the helper that starts clones (a
 * supervisor started from a sandboxed thread would inherit its filter).
 */
static void api_prepare(void *arg)
{
	struct run_ctx *ctx = arg;
	int ret;

	load_tls();
	if (ctx->sandbox != SANDBOX_OFF &&
	    (ret = api_clones_helper_start(sandbox_mode_name(ctx->sandbox))) < 0)
		log_warn("cannot start the clones' helper (%s): clones are started by the "
			 "sandboxed API and may fail",
			 strerror(-ret));
}

/* Serve the API; after this, API threads read ctx->spec under ctl.lock. */
static int run_api_open(struct run_ctx *ctx)
{
	int ret = api_ctl_init(&ctx->ctl, &ctx->spec, BANYAN_VERSION);

	if (ret < 0)
		return ret;
	ctx->ctl.lineage = &ctx->lineage;
	ctx->ctl.mmds = ctx->mmds;
	/* --mmds-size-limit and --metadata (api_settings) */
	if (ctx->ctl.mmds_size_limit)
		(void)mmds_set_limit(ctx->mmds, ctx->ctl.mmds_size_limit);
	if (ctx->ctl.mmds_initial && mmds_put(ctx->mmds, ctx->ctl.mmds_initial) < 0)
		log_warn("--metadata: %s", MMDS_LIMIT_MSG);
	ctx->start_handler.fd = ctx->ctl.start_fd;
	ctx->start_handler.fn = on_api_start;
	ret = event_loop_add(&ctx->loop, &ctx->start_handler, EPOLLIN);
	if (ret == 0)
		ret = api_server_begin(&ctx->ctl, ctx->api_path, api_prepare, ctx, &ctx->api);
	return ret;
}

static void run_api_close(struct run_ctx *ctx)
{
	if (!ctx->api_path)
		return;
	api_server_stop(ctx->api);
	ctx->api = NULL;
	if (ctx->ctl.start_fd >= 0) {
		event_loop_del(&ctx->loop, &ctx->start_handler);
		api_ctl_destroy(&ctx->ctl);
	}
}

/*
 * PUT /snapshot/load: open and check the snapshot the API named. False
 * (after answering the API with the reason) when it cannot be loaded.
 */
static bool run_open_snapshot(struct run_ctx *ctx)
{
	char err[SNAP_ERR_LEN];
	int console_fd = ctx->cfg.console_out_fd;

	snapshot_close(ctx->img);
	ctx->img = NULL;
	if (snapshot_open(ctx->ctl.load_path, true, &ctx->img, err) < 0) {
		log_error("PUT /snapshot/load: %s", err);
		api_vm_started(&ctx->ctl, NULL, err);
		return false;
	}
	/* From now on GET /vm/config shows the snapshot's machine, which the VM will be. */
	vmcfg_free(ctx->ctl.cfg);
	if (vmcfg_copy(ctx->ctl.cfg, snapshot_document(ctx->img)) < 0)
		log_warn("GET /vm/config will not show the restored machine");
	ctx->cfg = *snapshot_config(ctx->img);
	ctx->cfg.console_out_fd = console_fd;
	vmcfg_mmds_attach(snapshot_document(ctx->img), &ctx->cfg, ctx->mmds);
	ctx->restore_pending = true;
	ctx->start_paused = !ctx->ctl.load_resume;
	ctx->from_api = true;
	return true;
}

/*
 * Wait for InstanceStart (or a stop or a signal). Returns false to exit
 * with *@status; true with the API's machine config in ctx->cfg.
 */
static bool run_wait_for_start(struct run_ctx *ctx, int *status)
{
	int console_fd = ctx->cfg.console_out_fd;

	if (run_api_serving(ctx) < 0)
		return *status = EXIT_USAGE, false;
	log_info("waiting for the configuration and InstanceStart on %s", ctx->api_path);
	run_ready(ctx, NULL); /* --detach: the API serves; the VM waits for its client */
	do {
		ctx->start_pending = false;
		while (!ctx->start_pending && !ctx->api_quit)
			if (event_loop_run_once(&ctx->loop, -1) < 0)
				return *status = EXIT_HOST_ERROR, false;
	} while (ctx->start_pending && ctx->ctl.load_path[0] && !run_open_snapshot(ctx));
	if (!ctx->start_pending) {
		*status = ctx->quit_signal ? EXIT_SIGNAL_BASE + ctx->quit_signal : EXIT_GUEST_OK;
		return false;
	}
	if (ctx->restore_pending)
		return true;
	/* The spec cannot change while the VM starts or runs: the strings stay valid. */
	ctx->cfg = ctx->ctl.vm_cfg;
	ctx->cfg.console_out_fd = console_fd;
	ctx->from_api = true;
	return true;
}

/* Boot VMs until one stops for good; returns the exit status. */
static int run_vms(struct run_ctx *ctx)
{
	enum vm_exit reason;
	int status = EXIT_USAGE;

	for (;;) {
		if (!ctx->cfg.kernel_path && !ctx->incoming_pending &&
		    !run_wait_for_start(ctx, &status))
			return status;
		reason = run_one_vm(ctx, &status);
		if (reason == VM_EXIT_MIGRATED && ctx->api)
			api_linger(&ctx->ctl, 5000);
		/* A signal that raced with the guest's own exit still ends the process. */
		if (ctx->quit_signal)
			return EXIT_SIGNAL_BASE + ctx->quit_signal;
		if (reason == VM_EXIT_REBOOT && ctx->cfg.on_reboot == ON_REBOOT_RESTART) {
			log_guest_info(NULL, "restarting the VM (--on-reboot restart)");
			continue;
		}
		/* A failed InstanceStart was answered with its reason: wait for another. */
		if (ctx->from_api && ctx->create_failed) {
			ctx->cfg.kernel_path = NULL;
			continue;
		}
		return status;
	}
}

/* The console, then the main thread's sandbox, then the VMs; returns the exit status. */
static int run_sandboxed(struct run_ctx *ctx)
{
	int ret;

	if (ctx->consock && (ret = consock_run(ctx->consock)) < 0) {
		log_error("cannot serve the console socket: %s", strerror(-ret));
		return EXIT_HOST_ERROR;
	}
	if (console_open(&ctx->con, &ctx->loop, ctx->console_in_fd) < 0) {
		log_error("cannot set up the console: %s", strerror(errno));
		return EXIT_HOST_ERROR;
	}
	warn_if_pvm();
	/*
	 * GnuTLS is loaded, not linked, and only before the sandbox (which
	 * forbids mapping code): here for a destination given TLS
	 * credentials, on the API's starting thread (api_prepare) for a
	 * process the API can ask to migrate over TLS.
	 */
	if (mig_tls_wanted(&ctx->tls))
		load_tls();
	ret = seccomp_enter_main(); /* sandbox last: before the first VM */
	if (ret < 0) {
		log_error("cannot install the main thread's seccomp filter: %s", strerror(-ret));
		return EXIT_HOST_ERROR;
	}
	return run_vms(ctx);
}

/* Everything after the options: the sandbox, signals, the API, the console, the VMs. */
static int run_main(struct run_ctx *ctx)
{
	int status, ret;

	/* Before the clones' helper inherits the variable, and before the sandbox. */
	ctx->notify_fd = notify_open();
	if (ctx->notify_fd < 0 && ctx->notify_fd != -ENOENT)
		log_warn("NOTIFY_SOCKET: %s: readiness will not be reported",
			 strerror(-ctx->notify_fd));
	/* Before any thread starts: each one installs its filter as it does. */
	ret = seccomp_setup(ctx->sandbox);
	if (ret < 0) {
		log_error("cannot prepare the seccomp filters: %s", strerror(-ret));
		return EXIT_HOST_ERROR;
	}
	if (event_loop_init(&ctx->loop) < 0 || run_setup_signals(ctx) < 0) {
		log_error("cannot set up the signals: %s", strerror(errno));
		return EXIT_HOST_ERROR;
	}
	/* The data outlives each VM (a reboot, a snapshot load); the snapshot never holds it. */
	ctx->mmds = mmds_new();
	if (!ctx->mmds) {
		log_error("out of memory");
		return EXIT_HOST_ERROR;
	}
	vmcfg_mmds_attach(&ctx->spec, &ctx->cfg, ctx->mmds);
	/*
	 * The API's start goes on beside everything from here to the guest's
	 * first instruction: begun as soon as the signals are blocked (its
	 * threads inherit the mask, so that a SIGTERM reaches the loop).
	 */
	status = ctx->api_path && run_api_open(ctx) < 0 ? EXIT_USAGE : run_sandboxed(ctx);
	run_api_close(ctx);
	mmds_free(ctx->mmds);
	vmcfg_free(&ctx->spec);
	vmcfg_free(&ctx->mig_doc);
	json_object_put(ctx->reboot);
	console_close(&ctx->con);
	if (ctx->sig_handler.fd >= 0)
		close(ctx->sig_handler.fd);
	event_loop_destroy(&ctx->loop);
	snapshot_close(ctx->img);
	if (ctx->notify_fd >= 0)
		close(ctx->notify_fd);
	return status;
}

/* --api-socket elsewhere: ROOT/NAME/api.sock links to it, so that --name finds it. */
static int named_api_link(struct run_ctx *ctx)
{
	char link[NAMED_PATH], abs[NAMED_PATH], cwd[NAMED_PATH];
	int n;

	if (ctx->api_path == ctx->api_buf)
		return 0;
	if (named_path(ctx->name, NAMED_API, link, sizeof(link)) < 0)
		return -ENAMETOOLONG;
	if (ctx->api_path[0] == '/')
		n = snprintf(abs, sizeof(abs), "%s", ctx->api_path);
	else
		n = snprintf(abs, sizeof(abs), "%s/%s", getcwd(cwd, sizeof(cwd)) ? cwd : ".",
			     ctx->api_path);
	if (n < 0 || (size_t)n >= sizeof(abs))
		return -ENAMETOOLONG;
	return symlink(abs, link) < 0 ? -errno : 0;
}

/* vm.log: emptied for this run; the VMM's log goes there too unless --log-file (or in front). */
static int named_open_log(struct run_ctx *ctx)
{
	char path[NAMED_PATH];
	int ret = named_path(ctx->name, NAMED_LOG, path, sizeof(path));

	if (ret < 0)
		return ret;
	ctx->log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (ctx->log_fd < 0)
		return -errno;
	if (ctx->detach && !ctx->log_given && (ret = log_open_file(path)) < 0)
		return ret;
	return 0;
}

/* Claim the name, then the log, the console socket and the API's link. 0 or -errno. */
static int named_setup(struct run_ctx *ctx, const char **what)
{
	char path[NAMED_PATH];
	int out_fd, ret;

	*what = "the runtime directory";
	ctx->name_fd = named_claim(ctx->name);
	if (ctx->name_fd < 0)
		return ctx->name_fd;
	*what = "vm.log";
	ret = named_open_log(ctx);
	if (ret < 0)
		return ret;
	*what = "console.sock";
	ret = named_path(ctx->name, NAMED_CONSOLE, path, sizeof(path));
	if (ret == 0)
		ret = consock_open(path, ctx->log_fd, &out_fd, &ctx->console_in_fd, &ctx->consock);
	if (ret < 0)
		return ret;
	ctx->cfg.console_out_fd = out_fd;
	*what = "the link to the API socket";
	return named_api_link(ctx);
}

static void named_teardown(struct run_ctx *ctx)
{
	if (ctx->consock) {
		close(ctx->cfg.console_out_fd); /* the console's queue is flushed and gone */
		consock_stop(ctx->consock);
		close(ctx->console_in_fd);
	}
	if (ctx->log_fd >= 0)
		close(ctx->log_fd);
	named_release(ctx->name, ctx->name_fd);
}

/* The parent of --detach: the child's "R", or its reason (status 2). */
static int detach_wait(int fd, pid_t child, const char *name)
{
	char buf[1024];
	ssize_t n, len = 0;
	int st = 0;

	while (len < (ssize_t)sizeof(buf) - 1 &&
	       ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0 ||
		(n < 0 && errno == EINTR)))
		len += n > 0 ? n : 0;
	close(fd);
	buf[len] = '\0';
	if (len == 1 && buf[0] == 'R')
		return 0;
	if (len == 0 && waitpid(child, &st, 0) == child)
		snprintf(buf, sizeof(buf), "the VMM ended (status %d) before the VM ran",
			 WIFEXITED(st) ? WEXITSTATUS(st) : EXIT_SIGNAL_BASE + WTERMSIG(st));
	fprintf(stderr, "banyan run: %s: %s\n", name, buf);
	return EXIT_USAGE;
}

/* --detach: the parent waits and returns its status; the child returns -1 and goes on. */
static int detach(struct run_ctx *ctx)
{
	int p[2], null_fd;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0 || (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		fprintf(stderr, "banyan run: --detach: %s\n", strerror(errno));
		return EXIT_USAGE;
	}
	fflush(NULL);
	pid = fork();
	if (pid != 0) {
		close(p[1]);
		close(null_fd);
		if (pid < 0) {
			fprintf(stderr, "banyan run: --detach: fork: %s\n", strerror(errno));
			close(p[0]);
			return EXIT_USAGE;
		}
		return detach_wait(p[0], pid, ctx->name);
	}
	close(p[0]);
	ctx->ready_fd = p[1];
	/* No terminal: a session of its own, stdio on /dev/null (the log is vm.log). */
	(void)setsid();
	(void)dup2(null_fd, STDIN_FILENO);
	(void)dup2(null_fd, STDOUT_FILENO);
	(void)dup2(null_fd, STDERR_FILENO);
	close(null_fd);
	return -1;
}

static const char *named_error(int ret)
{
	if (ret == -EPERM)
		return "not a directory of this user's that only it can write";
	return ret == -EBUSY ? "a VM of this name is running" : strerror(-ret);
}

/* --name: the run in its runtime directory (in front, or detached). */
static int run_named(struct run_ctx *ctx)
{
	const char *what;
	char err[512];
	int status, ret;

	if (ctx->detach && (status = detach(ctx)) >= 0) {
		/* The parent: what the options made is the child's now. */
		vmcfg_free(&ctx->spec);
		json_object_put(ctx->reboot);
		snapshot_close(ctx->img);
		return status;
	}
	ret = named_setup(ctx, &what);
	if (ret < 0) {
		if (ret == -EBUSY)
			snprintf(err, sizeof(err), "%s", named_error(ret));
		else
			snprintf(err, sizeof(err), "%s: %s", what, named_error(ret));
		if (ctx->ready_fd < 0)
			fprintf(stderr, "banyan run: %s: %s\n", ctx->name, err);
		run_ready(ctx, err);
		named_teardown(ctx);
		return EXIT_USAGE;
	}
	if (ctx->detach && !ctx->log_given) /* late errors land in vm.log */
		(void)dup2(ctx->log_fd, STDERR_FILENO);
	status = run_main(ctx);
	run_ready(ctx, log_last_error());
	named_teardown(ctx);
	return status;
}

int cmd_run(int argc, char **argv)
{
	struct run_ctx ctx = {.sig_handler.fd = -1,
			      .ctl.start_fd = -1,
			      .clone_index = -1,
			      .name_fd = -1,
			      .ready_fd = -1,
			      .started_fd = -1,
			      .log_fd = -1,
			      .console_in_fd = STDIN_FILENO};
	int ret;

	vmcfg_init(&ctx.spec);
	vmcfg_init(&ctx.mig_doc);
	ret = parse_run_args(&ctx, argc, argv);
	if (ret != 0) {
		vmcfg_free(&ctx.spec);
		json_object_put(ctx.reboot);
		if (ret == 1)
			run_usage(stdout);
		return ret == 1 ? 0 : EXIT_USAGE;
	}
	return ctx.name ? run_named(&ctx) : run_main(&ctx);
}

int run_snapshot(const struct run_snapshot_args *a)
{
	struct run_ctx ctx = {.sig_handler.fd = -1,
			      .ctl.start_fd = -1,
			      .name_fd = -1,
			      .ready_fd = -1,
			      .started_fd = -1,
			      .log_fd = -1,
			      .console_in_fd = STDIN_FILENO};
	char err[SNAP_ERR_LEN];

	/* Before the configuration is copied: a reboot must keep the clone's own disks. */
	if ((a->clone_index >= 0 || a->overlay_prefix) &&
	    snapshot_prepare_clone(a->img, a->clone_index, a->overlay_prefix, err) < 0) {
		log_error("clone %d: %s", a->clone_index, err);
		snapshot_close(a->img);
		return EXIT_USAGE;
	}
	vmcfg_init(&ctx.spec);
	vmcfg_init(&ctx.mig_doc);
	if (vmcfg_copy(&ctx.spec, snapshot_document(a->img)) < 0)
		log_warn("GET /vm/config will not show the restored machine");
	ctx.img = a->img;
	ctx.cfg = *snapshot_config(a->img);
	ctx.cfg.console_out_fd = a->console_fd;
	ctx.restore_pending = true;
	ctx.start_paused = a->paused;
	ctx.clone_index = a->clone_index;
	ctx.restore_t0 = a->t0_ns;
	ctx.api_path = a->api_path;
	ctx.sandbox = a->sandbox;
	ctx.name = a->name;
	ctx.detach = a->detach;
	ctx.log_given = a->log_given;
	ctx.started_fd = a->started_fd > STDERR_FILENO ? a->started_fd : -1;
	if (!ctx.name)
		return run_main(&ctx);
	if (!ctx.api_path) {
		if (named_path(ctx.name, NAMED_API, ctx.api_buf, sizeof(ctx.api_buf)) < 0) {
			log_error("%s: the runtime directory's path is too long", ctx.name);
			snapshot_close(ctx.img);
			vmcfg_free(&ctx.spec);
			return EXIT_USAGE;
		}
		ctx.api_path = ctx.api_buf;
	}
	return run_named(&ctx);
}
