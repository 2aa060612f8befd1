/*
 * The API socket: a Unix stream socket Banyan binds itself and hands to
 * libmicrohttpd, which parses HTTP/1.1 on one thread of ours ("api", its
 * event loop below). A complete request goes to the executor (api/exec.h)
 * and its connection is suspended until the answer is ready: the thread
 * that reads clients' bytes never runs a handler, so its seccomp role
 * allows little more than socket I/O.
 * Limits keep clients from hurting each other or the VMM:
 * - a connection has API_REQUEST_S to send a whole request (from its
 *   connect, or from the answer to its previous request); then it is shut
 *   down. MHD's own timeout only counts silence, so a client sending a
 *   byte now and then (slowloris) would keep its slot for ever;
 * - at most API_MAX_PENDING connections wait for their request: one more
 *   evicts the oldest of them, so clients that trickle bytes can never
 *   fill the server and a new client is always let in;
 * - at most API_MAX_CONNECTIONS at once in all (those being answered
 *   included), and a body over the limit (ctl->max_body: 64 KiB, or
 *   Firecracker's --http-api-max-payload-size) is refused without being
 *   stored, with Firecracker's status and message.
 */
#include "api/api.h"
#include "api/exec.h"
#include "api/mhd_lib.h"
#include "util/clock.h"
#include "util/efd.h"

#include "util/log.h"
#include "util/thread.h"
#include "util/usock.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define API_MAX_CONNECTIONS 128 /* in all; more are refused by MHD */
#define API_MAX_PENDING	    64	/* still sending their request; more evict the oldest */
#define API_REQUEST_S	    5	/* to send a whole request */
#define API_TIMEOUT_S	    10	/* MHD's: silence on a connection */
#define API_BACKLOG	    64
#define API_DRAIN_MS	    1000

/* libmicrohttpd, loaded by the first api_server_begin (mhd_lib.h), then only read. */
static const struct mhd_lib *mhd;

/* A connection the reaper watches. */
struct api_conn {
	struct api_conn *next, *prev;
	int fd; /* our duplicate of its socket, for shutdown() (never reused meanwhile) */
	uint64_t deadline; /* CLOCK_MONOTONIC ns to complete a request; 0 while one is answered */
	bool killed;	   /* shut down: it gets no answer any more */
};

struct api_server {
	struct MHD_Daemon *daemon;
	struct api_ctl *ctl;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_mutex_t conns_lock; /* protects conns, npending, reaper_stop */
	pthread_cond_t conns_cond;  /* a deadline changed, or stop */
	struct api_conn conns;	    /* list head, oldest first */
	unsigned int npending;	    /* connections with a deadline, not killed */
	bool reaper_stop;
	bool reaper_started;
	pthread_t reaper;
	struct api_exec *exec; /* runs the handlers */
	pthread_t loop;	       /* the "api" thread: MHD's event loop */
	bool loop_started;
	void (*prepare)(void *); /* the caller's work before serving (api_server_begin) */
	void *prepare_arg;
	pthread_t starter; /* the start's slow half, until api_server_wait */
	bool starting;
	int start_ret;
	int stop_fd; /* ends the loop */
	int wake_fd; /* a connection resumed: MHD has work (it has no channel of its own here) */
};

/* Shut @c down (its thread sees end of file and MHD closes it). Under conns_lock. */
static void conn_kill(struct api_server *srv, struct api_conn *c)
{
	if (c->killed)
		return;
	shutdown(c->fd, SHUT_RDWR);
	c->killed = true;
	if (c->deadline)
		srv->npending--;
}

/* @c now waits for a request (@waiting) or is being answered. Under conns_lock. */
static void conn_set_waiting(struct api_server *srv, struct api_conn *c, bool waiting)
{
	if (c->killed)
		return;
	if (!c->deadline && waiting)
		srv->npending++;
	else if (c->deadline && !waiting)
		srv->npending--;
	c->deadline = waiting ? now_ns() + API_REQUEST_S * 1000000000ULL : 0;
	pthread_cond_signal(&srv->conns_cond);
}

/* Over API_MAX_PENDING: the connection waiting longest goes. Under conns_lock. */
static void conns_evict(struct api_server *srv)
{
	struct api_conn *c, *oldest = NULL;

	while (srv->npending > API_MAX_PENDING) {
		for (c = srv->conns.next; c != &srv->conns; c = c->next)
			if (c->deadline && !c->killed &&
			    (!oldest || c->deadline < oldest->deadline))
				oldest = c;
		if (!oldest)
			return;
		log_debug("api: %u connections wait for their request: dropping the oldest",
			  srv->npending);
		conn_kill(srv, oldest);
		oldest = NULL;
	}
}

/* Shut down the connections past their deadline; the next deadline (0: none). */
static uint64_t conns_reap(struct api_server *srv)
{
	uint64_t now = now_ns(), next = 0;
	struct api_conn *c;

	for (c = srv->conns.next; c != &srv->conns; c = c->next) {
		if (!c->deadline || c->killed)
			continue;
		if (c->deadline <= now) {
			log_debug("api: a client took over %d s to send its request: disconnected",
				  API_REQUEST_S);
			conn_kill(srv, c);
		} else if (!next || c->deadline < next) {
			next = c->deadline;
		}
	}
	return next;
}

static void *reaper_main(void *arg)
{
	struct api_server *srv = arg;
	struct timespec ts;
	uint64_t next;

	thread_enter("api-reaper");
	pthread_mutex_lock(&srv->conns_lock);
	while (!srv->reaper_stop) {
		next = conns_reap(srv);
		if (!next) {
			pthread_cond_wait(&srv->conns_cond, &srv->conns_lock);
			continue;
		}
		ts.tv_sec = (time_t)(next / 1000000000ULL);
		ts.tv_nsec = (long)(next % 1000000000ULL);
		pthread_cond_timedwait(&srv->conns_cond, &srv->conns_lock, &ts);
	}
	pthread_mutex_unlock(&srv->conns_lock);
	return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct api_server *srv = cls;
	const union MHD_ConnectionInfo *ci;
	struct api_conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!c)
			return;
		pthread_mutex_lock(&srv->conns_lock);
		conn_kill(srv, c); /* only for the count: it is closed anyway */
		c->prev->next = c->next;
		c->next->prev = c->prev;
		pthread_mutex_unlock(&srv->conns_lock);
		close(c->fd);
		free(c);
		*socket_context = NULL;
		return;
	}
	ci = mhd->get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	c = calloc(1, sizeof(*c));
	if (!c || !ci || (c->fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		free(c); /* not watched: still served, under MHD's own timeout */
		return;
	}
	pthread_mutex_lock(&srv->conns_lock);
	c->prev = srv->conns.prev;
	c->next = &srv->conns;
	c->prev->next = c;
	srv->conns.prev = c;
	conn_set_waiting(srv, c, true);
	conns_evict(srv);
	pthread_mutex_unlock(&srv->conns_lock);
	*socket_context = c;
}

/*
 * The connection's request is complete and about to be answered (@waiting
 * false) or was answered (@waiting true: the next one may come). False when
 * the reaper already shut it down: no handler runs for a request that came
 * too late.
 */
static bool conn_mark(struct api_server *srv, struct MHD_Connection *conn, bool waiting)
{
	const union MHD_ConnectionInfo *ci =
	    mhd->get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct api_conn *c = ci ? ci->socket_context : NULL;
	bool alive;

	if (!c)
		return true;
	pthread_mutex_lock(&srv->conns_lock);
	alive = !c->killed;
	conn_set_waiting(srv, c, waiting);
	pthread_mutex_unlock(&srv->conns_lock);
	return alive;
}

/* One request: its body as it arrives, then its trip through the executor. */
struct upload {
	char *buf;
	size_t len;
	size_t max;	  /* the server's limit */
	uint64_t offered; /* bytes the client sent, stored or not */
	bool too_large;
	bool submitted; /* handed to the executor; the connection is suspended */
	struct api_job job;
	struct MHD_Connection *conn;
	struct api_server *srv;
};

static enum MHD_Result send_reply(struct MHD_Connection *conn, const struct api_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = mhd->create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (r->content_type)
		mhd->add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	if (r->deprecated) /* as Firecracker marks a request that used a deprecated field */
		mhd->add_response_header(resp, "Deprecation", "true");
	ret = mhd->queue_response(conn, r->status, resp);
	mhd->destroy_response(resp);
	return ret;
}

/*
 * A body over the limit: Firecracker's status (400) and words. Its HTTP
 * library names the error "error"; its API clients read "fault_message":
 * both carry it.
 */
static enum MHD_Result send_too_large(struct MHD_Connection *conn, unsigned long long size,
				      size_t limit)
{
	char msg[160], body[400];
	struct api_reply r = {.status = 400, .content_type = "application/json", .body = body};

	snprintf(msg, sizeof(msg),
		 "Request payload with size %llu is larger than the limit of %zu allowed by "
		 "server.",
		 size, limit);
	r.body_len = (size_t)snprintf(body, sizeof(body),
				      "{\"error\":\"%s\",\"fault_message\":\"%s\"}", msg, msg);
	return send_reply(conn, &r);
}

/* Store @len more bytes of the body, or mark it too large. */
static void upload_add(struct upload *up, const char *data, size_t len)
{
	char *n;

	up->offered += len;
	if (up->too_large || up->len + len > up->max) {
		up->too_large = true;
		return;
	}
	n = realloc(up->buf, up->len + len + 1);
	if (!n) {
		up->too_large = true;
		return;
	}
	memcpy(n + up->len, data, len);
	up->buf = n;
	up->len += len;
	up->buf[up->len] = '\0';
}

/* A declared body too large is refused before any of it is read: its size, else 0. */
static unsigned long long declared_too_large(struct MHD_Connection *conn, size_t max)
{
	const char *cl =
	    mhd->lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;

	return n > max ? n : 0;
}

/* The executor answered: the connection resumes and on_request sends the reply. */
static void job_done(struct api_job *job)
{
	struct upload *up = job->opaque;

	mhd->resume_connection(up->conn);
	(void)efd_signal(up->srv->wake_fd);
}

/* Suspend first: the executor may answer before this callback returns. */
static enum MHD_Result submit(struct api_server *srv, struct MHD_Connection *conn,
			      struct upload *up, const char *method, const char *url)
{
	up->submitted = true;
	up->conn = conn;
	up->srv = srv;
	up->job = (struct api_job){.method = method,
				   .url = url,
				   .body = up->buf ? up->buf : "",
				   .body_len = up->len,
				   .done = job_done,
				   .opaque = up};
	mhd->suspend_connection(conn);
	api_exec_submit(srv->exec, &up->job);
	return MHD_YES;
}

/*
 * GET /banyan/v1/progress is answered here, on the HTTP thread, from
 * atomic counters: through the executor it would wait behind the very
 * snapshot it reports on.
 */
static bool is_progress(const char *method, const char *url)
{
	return strcmp(method, "GET") == 0 && strcmp(url, API_PROGRESS_PATH) == 0;
}

static enum MHD_Result send_progress(struct api_server *srv, struct MHD_Connection *conn)
{
	struct api_reply r;
	enum MHD_Result ret;

	api_progress(srv->ctl, &r);
	atomic_fetch_add(&srv->ctl->requests, 1);
	ret = send_reply(conn, &r);
	free(r.body);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **state)
{
	struct api_server *srv = cls;
	struct upload *up = *state;
	size_t max = srv->ctl->max_body;
	unsigned long long declared;

	(void)version;
	if (!up) {
		if ((declared = declared_too_large(conn, max)))
			return conn_mark(srv, conn, false) ? send_too_large(conn, declared, max)
							   : MHD_NO;
		up = calloc(1, sizeof(*up));
		if (!up)
			return MHD_NO;
		up->max = max;
		*state = up;
		return MHD_YES;
	}
	if (*upload_data_size) {
		upload_add(up, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (up->submitted) { /* resumed: the answer is ready */
		log_debug("api: %s %s -> %u", method, url, up->job.reply.status);
		return send_reply(conn, &up->job.reply);
	}
	if (!conn_mark(srv, conn, false))
		return MHD_NO;
	if (up->too_large)
		return send_too_large(conn, up->offered, max);
	if (is_progress(method, url))
		return send_progress(srv, conn);
	return submit(srv, conn, up, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
			 enum MHD_RequestTerminationCode code)
{
	struct upload *up = *state;

	(void)code;
	conn_mark(cls, conn, true);
	if (up) {
		free(up->job.reply.body);
		free(up->buf);
		free(up);
		*state = NULL;
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("api: %s", msg);
}

static int api_listen(struct api_server *srv, const char *path)
{
	srv->fd = usock_listen(path, API_BACKLOG);
	if (srv->fd < 0)
		return srv->fd;
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	return 0;
}

/* The watch list and its reaper thread; deadlines are on CLOCK_MONOTONIC. */
static int conns_init(struct api_server *srv)
{
	pthread_condattr_t attr;
	int ret;

	srv->conns.next = srv->conns.prev = &srv->conns;
	pthread_mutex_init(&srv->conns_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->conns_cond, &attr);
	pthread_condattr_destroy(&attr);
	ret = -pthread_create(&srv->reaper, NULL, reaper_main, srv);
	srv->reaper_started = ret == 0;
	return ret;
}

/* After MHD stopped (every connection closed and unlinked). */
static void conns_destroy(struct api_server *srv)
{
	if (!srv->conns.next)
		return;
	if (srv->reaper_started) {
		pthread_mutex_lock(&srv->conns_lock);
		srv->reaper_stop = true;
		pthread_cond_signal(&srv->conns_cond);
		pthread_mutex_unlock(&srv->conns_lock);
		pthread_join(srv->reaper, NULL);
	}
	pthread_mutex_destroy(&srv->conns_lock);
	pthread_cond_destroy(&srv->conns_cond);
}

/* At stop: connections that have not sent a request will get no answer. */
static void conns_kill_waiting(struct api_server *srv)
{
	struct api_conn *c;

	pthread_mutex_lock(&srv->conns_lock);
	for (c = srv->conns.next; c != &srv->conns; c = c->next)
		if (c->deadline)
			conn_kill(srv, c);
	pthread_mutex_unlock(&srv->conns_lock);
}

/* The "api" thread: MHD's epoll set, the wake and stop eventfds, then MHD's work. */
static void *api_loop(void *arg)
{
	struct api_server *srv = arg;
	const union MHD_DaemonInfo *info =
	    mhd->get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd fds[3] = {{.fd = info ? info->epoll_fd : -1, .events = POLLIN},
				{.fd = srv->stop_fd, .events = POLLIN},
				{.fd = srv->wake_fd, .events = POLLIN}};
	MHD_UNSIGNED_LONG_LONG ms;
	int timeout;

	thread_enter("api");
	for (;;) {
		timeout = mhd->get_timeout(srv->daemon, &ms) == MHD_YES
			      ? (int)(ms < 60000 ? ms : 60000)
			      : -1;
		if (poll(fds, 3, timeout) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (fds[2].revents)
			(void)efd_drain(srv->wake_fd);
		mhd->run(srv->daemon);
	}
	return NULL;
}

/*
 * MHD without threads of its own: it is set up here, on the calling (main)
 * thread, and runs on ours, which sandboxes itself before it reads a byte.
 */
static int api_start_mhd(struct api_server *srv)
{
	int ret;

	srv->daemon = mhd->start_daemon(
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
	    srv, MHD_OPTION_LISTEN_SOCKET, srv->fd, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)API_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)API_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_EXTERNAL_LOGGER,
	    on_mhd_log, srv, MHD_OPTION_END);
	if (!srv->daemon)
		return -EIO;
	srv->stop_fd = efd_create();
	if (srv->stop_fd < 0)
		return srv->stop_fd;
	srv->wake_fd = efd_create();
	if (srv->wake_fd < 0)
		return srv->wake_fd;
	ret = -pthread_create(&srv->loop, NULL, api_loop, srv);
	srv->loop_started = ret == 0;
	return ret;
}

/* The library, before the sandbox (which forbids mapping code). */
static int api_load_mhd(void)
{
	char err[256];

	mhd = mhd_lib_load(err, sizeof(err));
	if (!mhd) {
		log_error("cannot serve the API: %s", err);
		return -ENOENT;
	}
	return 0;
}

static void log_start_error(const char *path, int ret)
{
	log_error("cannot serve the API on %s: %s", path,
		  ret == -EADDRINUSE ? "another process serves this socket"
		  : ret == -EEXIST   ? "the path exists and is not a socket"
				     : strerror(-ret));
}

/*
 * The slow half of a start, on a thread of its own while the caller builds
 * the VM: mapping libmicrohttpd (and GnuTLS with it) is most of an API
 * VMM's start-up. The thread is created before the caller's sandbox and
 * ends before the guest runs; the threads it starts sandbox themselves,
 * and so may what @prepare starts (it runs unsandboxed too).
 */
static void *api_finish_start(void *arg)
{
	struct api_server *srv = arg;
	int ret = api_load_mhd();

	if (ret == 0 && srv->prepare)
		srv->prepare(srv->prepare_arg);
	if (ret == 0)
		ret = api_exec_start(srv->ctl, &srv->exec);
	if (ret == 0)
		ret = api_start_mhd(srv);
	srv->start_ret = ret;
	return NULL;
}

int api_server_begin(struct api_ctl *ctl, const char *path, void (*prepare)(void *), void *arg,
		     struct api_server **out)
{
	struct api_server *srv = calloc(1, sizeof(*srv));
	int ret;

	if (!srv)
		return -ENOMEM;
	srv->ctl = ctl;
	srv->fd = -1;
	srv->stop_fd = srv->wake_fd = -1;
	srv->prepare = prepare;
	srv->prepare_arg = arg;
	ret = conns_init(srv);
	if (ret == 0)
		ret = api_listen(srv, path);
	if (ret < 0) {
		log_start_error(path, ret);
		api_server_stop(srv);
		return ret;
	}
	srv->starting = pthread_create(&srv->starter, NULL, api_finish_start, srv) == 0;
	if (!srv->starting)
		(void)api_finish_start(srv); /* no thread to spare: here, then */
	*out = srv;
	return 0;
}

int api_server_wait(struct api_server *srv)
{
	if (srv->starting) {
		pthread_join(srv->starter, NULL);
		srv->starting = false;
		if (srv->start_ret < 0)
			log_start_error(srv->path, srv->start_ret);
		else
			log_info("API listening on %s", srv->path);
	}
	return srv->start_ret;
}

/*
 * Stop accepting, then give connections still open a moment to finish, so
 * the answer to the request that ended the VMM (a stop) reaches its client.
 */
static void api_drain(struct api_server *srv)
{
	const union MHD_DaemonInfo *info;
	MHD_socket fd = mhd->quiesce_daemon(srv->daemon);
	int i;

	if (fd != MHD_INVALID_SOCKET) {
		close(fd);
		srv->fd = -1;
	}
	conns_kill_waiting(srv);
	for (i = 0; i < API_DRAIN_MS / 10; i++) {
		info = mhd->get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (!info || info->num_connections == 0)
			break;
		usleep(10000);
	}
}

/* The loop ends; MHD's state is ours again. */
static void api_loop_stop(struct api_server *srv)
{
	if (srv->loop_started) {
		(void)efd_signal(srv->stop_fd);
		pthread_join(srv->loop, NULL);
		srv->loop_started = false;
	}
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
}

/*
 * The executor stops before the drain: the handler it runs finishes and
 * queued requests are refused, and the loop still sends their answers.
 */
void api_server_stop(struct api_server *srv)
{
	if (!srv)
		return;
	if (srv->starting) {
		pthread_join(srv->starter, NULL);
		srv->starting = false;
	}
	api_exec_stop(srv->exec);
	/* MHD closes the listening socket unless quiesced (then it is ours). */
	if (srv->daemon) {
		api_drain(srv);
		api_loop_stop(srv);
		mhd->stop_daemon(srv->daemon);
	} else if (srv->fd >= 0) {
		close(srv->fd);
	}
	conns_destroy(srv);
	if (srv->path[0])
		unlink(srv->path);
	free(srv);
}
