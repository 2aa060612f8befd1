/*
 * The control plane: an HTTP/1.1 + JSON API on a Unix socket, compatible
 * with Firecracker's (docs/api.md), served by libmicrohttpd with one thread
 * per connection, so a slow or stuck client holds only its own thread and
 * never a vCPU; it has 5 s to send its request and cannot keep others out
 * (server.c).
 *
 * The API and the process running the VM meet in struct api_ctl. The API
 * threads change the configuration before boot and act on the live VM
 * after it; the run loop (banyan run) creates, starts and destroys VMs and
 * tells the API through api_vm_started/api_vm_stopped. InstanceStart is
 * handed to the run loop (start_fd), which answers through start_cond, so
 * VMs are always created on the run loop's thread.
 */
#ifndef BANYAN_API_API_H
#define BANYAN_API_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/vmcfg.h"
#include "migration/migration.h"

struct vm;
struct api_server;
struct mig_source;
struct snapshot_lineage;

enum api_state {
	API_NOT_STARTED, /* configuring; InstanceStart not yet asked or it failed */
	API_STARTING,	 /* InstanceStart handed to the run loop */
	API_RUNNING,	 /* a VM exists (running or paused) */
	API_STOPPED,	 /* the VM stopped for good; the process is about to exit */
};

/* The latencies Firecracker's metrics report (latencies_us), the last one measured of each. */
enum api_latency {
	API_LAT_PAUSE,
	API_LAT_RESUME,
	API_LAT_FULL_SNAPSHOT,
	API_LAT_DIFF_SNAPSHOT,
	API_LAT_LOAD_SNAPSHOT,
	API_LAT_COUNT
};
extern const char *const api_latency_names[API_LAT_COUNT];

struct api_ctl {
	pthread_mutex_t lock;	   /* protects everything below but the counters */
	pthread_cond_t start_cond; /* signalled when STARTING ends */
	struct vmcfg *cfg;	   /* the VM's configuration (owned by the run loop) */
	struct vm_config vm_cfg;   /* built from cfg by InstanceStart for the run loop */
	enum api_state state;
	struct vm *vm; /* the live VM while RUNNING, else NULL */
	struct snapshot_lineage
	    *lineage;		       /* the live VM's place in the snapshot tree (run loop's) */
	char start_err[VMCFG_ERR_LEN]; /* why the last InstanceStart failed */
	bool quit;		       /* stop asked before boot: the process exits */
	char load_path[4096]; /* PUT /snapshot/load: the snapshot to restore ("" for a boot) */
	bool load_resume;     /* ... and whether its vCPUs run at once (resume_vm) */
	int start_fd;	      /* eventfd: the run loop has an InstanceStart or quit */
	int metrics_fd;	      /* PUT /metrics: the open metrics file or FIFO, or -1 */
	uint64_t boots;	      /* VMs started so far (restarts included) */
	const char *version;
	const char *instance_id; /* GET /'s id ("anonymous-instance" unless --id) */
	size_t max_body;	 /* largest request body accepted (api_settings) */
	/* What the MMDS will serve (api_settings): the --metadata document, its size cap. */
	json_object *mmds_initial;
	struct mmds *mmds; /* the metadata store (mmds/mmds.h), the run loop's; NULL: none */
	uint64_t mmds_size_limit;
	/* The JSON metrics file's writer (metrics_json.c): every 60 s, on FlushMetrics, at the end.
	 */
	json_object *metrics_prev;   /* the totals of the last line written */
	pthread_cond_t metrics_cond; /* wakes the writer to stop */
	pthread_t metrics_thread;
	bool metrics_timer; /* the writer runs */
	bool metrics_stop;
	uint64_t latency_us[API_LAT_COUNT]; /* the last of each, for latencies_us */
	/* The last migration started through the API (its status stays for GET), or NULL. */
	struct mig_source *mig;
	struct mig_status mig_final; /* its last status once the VM it moved is gone */
	bool mig_outcome_read;	     /* a GET /banyan/v1/migrate showed how it ended */
	/* A destination's post-copy while its VM runs (the run loop's), or NULL. */
	struct mig_postcopy *incoming_pc;
	_Atomic uint64_t requests;	  /* API requests answered */
	_Atomic uint64_t errors;	  /* ... of which with a 4xx/5xx status */
	_Atomic uint64_t metrics_dropped; /* FlushMetrics dropped: the metrics FIFO was full */
	/*
	 * The snapshot being written (PUT /snapshot/create, the clones'
	 * take_snapshot), for GET /banyan/v1/progress: set by the executor,
	 * read without the lock by the HTTP thread, which answers that route
	 * itself so a poller never waits behind the snapshot (server.c).
	 */
	_Atomic bool snap_active;
	_Atomic uint64_t snap_done;  /* bytes of guest memory written so far */
	_Atomic uint64_t snap_total; /* the guest memory's size */
	_Atomic uint64_t snap_count; /* snapshots begun: a poller tells a new one from the last */
};

/*
 * The process's API settings, the same for every control block it creates
 * (Firecracker's process flags: --id, --http-api-max-payload-size,
 * --mmds-size-limit, --metadata). Set before api_ctl_init.
 */
#define API_DEFAULT_ID	      "anonymous-instance"
#define API_MAX_BODY_LIMIT    (16u << 20) /* the most --http-api-max-payload-size may ask */
#define API_DEFAULT_MMDS_SIZE 51200	  /* Firecracker's default data store limit */
/* Firecracker's API version this one implements (GET /version, firecracker --version). */
#define API_FIRECRACKER_VERSION "1.10.0"
struct api_settings {
	const char *instance_id;   /* NULL: API_DEFAULT_ID */
	size_t max_body;	   /* 0: VMCFG_MAX_BODY */
	uint64_t mmds_size_limit;  /* 0: API_DEFAULT_MMDS_SIZE */
	json_object *mmds_initial; /* owned by the settings once set; NULL: empty */
	const char *metrics_path;  /* opened by api_ctl_init, as PUT /metrics would */
};

/*
 * api_settings_set - the settings later control blocks take (a copy; the
 * strings must live as long as the process). Takes ownership of
 * mmds_initial.
 */
void api_settings_set(const struct api_settings *s);

/*
 * api_ctl_init - an idle control block for @cfg, with the process's
 * settings (a metrics_path among them is opened now). 0 or -errno (with a
 * log line when a file is the cause).
 */
int api_ctl_init(struct api_ctl *ctl, struct vmcfg *cfg, const char *version)
    __attribute__((warn_unused_result));

void api_ctl_destroy(struct api_ctl *ctl);

/*
 * api_server_begin - bind @path now (refused if another process serves it;
 * a stale socket file is replaced), mode 0600, and start serving @ctl on a
 * thread of its own: it maps libmicrohttpd, runs @prepare(@arg) (NULL, or
 * the caller's own work before serving that needs no sandbox yet: more
 * code to map, a process to start), then starts MHD's threads. Clients
 * may connect at once; their requests are read once it serves. Call
 * before the caller's sandbox. Returns 0, or -errno with one log line
 * when the socket cannot be made.
 */
int api_server_begin(struct api_ctl *ctl, const char *path, void (*prepare)(void *), void *arg,
		     struct api_server **out) __attribute__((warn_unused_result));

/*
 * api_server_wait - wait until the start api_server_begin left running is
 * done: 0 when the API serves, or -errno with one log line (the library
 * is missing, a thread cannot start). Later calls return the same.
 */
int api_server_wait(struct api_server *srv) __attribute__((warn_unused_result));

/* api_server_stop - stop serving, wait for in-flight requests, remove the socket. */
void api_server_stop(struct api_server *srv);

/*
 * api_take_start - for the run loop when start_fd is readable: true when an
 * InstanceStart waits (its machine config is in ctl->vm_cfg), false
 * otherwise; *@quit tells that a stop came before boot.
 */
bool api_take_start(struct api_ctl *ctl, bool *quit);

/*
 * api_vm_started - the run loop created (@vm non-NULL) or failed to create
 * (@vm NULL, @err says why) the VM; answers a waiting InstanceStart.
 */
void api_vm_started(struct api_ctl *ctl, struct vm *vm, const char *err);

/*
 * api_vm_stopped - the VM stopped and is about to be destroyed; @final:
 * no restart follows. After it returns no API thread touches the VM.
 */
void api_vm_stopped(struct api_ctl *ctl, bool final);

/*
 * api_linger - after a migration moved the VM away, keep answering for up
 * to @ms so that whoever follows it (banyan ctl migrate) reads how it
 * ended; returns one second after a GET /banyan/v1/migrate first showed
 * that (other followers read it too), or after @ms.
 */
void api_linger(struct api_ctl *ctl, unsigned int ms);

/* api_handle - one request, for the server and the fuzz target. Returns the status. */
struct api_reply {
	unsigned int status;
	const char *content_type; /* NULL: no body */
	char *body;		  /* malloc'ed, or NULL */
	size_t body_len;
	bool deprecated; /* the request used a deprecated field: a Deprecation header */
};
void api_handle(struct api_ctl *ctl, const char *method, const char *url, const char *body,
		size_t body_len, struct api_reply *reply);

/*
 * api_progress - GET /banyan/v1/progress's reply into @reply (its body
 * malloc'ed): {"snapshot": {"active", "bytes_done", "bytes_total", "count"}}.
 * Reads only @ctl's atomic counters, never takes ctl->lock: the HTTP
 * thread calls it while the executor writes a snapshot.
 */
void api_progress(struct api_ctl *ctl, struct api_reply *reply);

#define API_PROGRESS_PATH "/banyan/v1/progress"

/*
 * api_metrics_flush - write one JSON line of Firecracker's metrics (what
 * happened since the last line) to the metrics file, whole or not at all,
 * never blocking. Under ctl->lock. 0 or -errno with a fault_message.
 */
int api_metrics_flush(struct api_ctl *ctl, char *err);

/*
 * api_metrics_timer_start - once the metrics file is open: a line every
 * 60 s until api_metrics_timer_stop, which writes a last one. 0 or -errno.
 * The writer takes ctl->lock, so stop is called without it.
 */
int api_metrics_timer_start(struct api_ctl *ctl) __attribute__((warn_unused_result));
void api_metrics_timer_stop(struct api_ctl *ctl);

/*
 * api_metrics - the Prometheus text exposition of @ctl's VM (malloc'ed,
 * NULL when out of memory). Called with ctl->lock held.
 */
char *api_metrics(struct api_ctl *ctl, size_t *len);

#endif
