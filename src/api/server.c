/*
 * The API socket: a Unix stream socket Banyan binds itself and hands to
 * libmicrohttpd, which parses HTTP/1.1 with one thread per connection.
 * Limits keep clients from hurting each other or the VMM: at most
 * API_MAX_CONNECTIONS at once, an idle connection is dropped after
 * API_TIMEOUT_S, and a body over VMCFG_MAX_BODY is refused (413) without
 * being stored.
 */
#include "api/api.h"

#include "util/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define API_MAX_CONNECTIONS 64
#define API_TIMEOUT_S	    10
#define API_BACKLOG	    64
#define API_DRAIN_MS	    1000

struct api_server {
	struct MHD_Daemon *daemon;
	struct api_ctl *ctl;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One request's body as it arrives. */
struct upload {
	char *buf;
	size_t len;
	bool too_large;
};

static enum MHD_Result send_reply(struct MHD_Connection *conn, const struct api_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_fault(struct MHD_Connection *conn, unsigned int status, const char *msg)
{
	char body[256];
	struct api_reply r = {.status = status, .content_type = "application/json", .body = body};

	r.body_len = (size_t)snprintf(body, sizeof(body), "{\"fault_message\":\"%s\"}", msg);
	return send_reply(conn, &r);
}

/* Store @len more bytes of the body, or mark it too large. */
static void upload_add(struct upload *up, const char *data, size_t len)
{
	char *n;

	if (up->too_large || up->len + len > VMCFG_MAX_BODY) {
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

/* A declared body too large is refused before any of it is read. */
static bool declared_too_large(struct MHD_Connection *conn)
{
	const char *cl =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return cl && strtoull(cl, NULL, 10) > VMCFG_MAX_BODY;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **state)
{
	struct api_server *srv = cls;
	struct upload *up = *state;
	struct api_reply reply;
	enum MHD_Result ret;

	(void)version;
	if (!up) {
		if (declared_too_large(conn))
			return send_fault(conn, 413, "the body is larger than 65536 bytes");
		up = calloc(1, sizeof(*up));
		if (!up)
			return MHD_NO;
		*state = up;
		return MHD_YES;
	}
	if (*upload_data_size) {
		upload_add(up, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (up->too_large)
		return send_fault(conn, 413, "the body is larger than 65536 bytes");
	api_handle(srv->ctl, method, url, up->buf ? up->buf : "", up->len, &reply);
	log_debug("api: %s %s -> %u", method, url, reply.status);
	ret = send_reply(conn, &reply);
	free(reply.body);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
			 enum MHD_RequestTerminationCode code)
{
	struct upload *up = *state;

	(void)cls;
	(void)conn;
	(void)code;
	if (up) {
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

/* A socket file nobody listens on is stale and replaced; a live one is refused. */
static int api_claim_path(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret;

	if (lstat(addr->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	close(fd);
	if (ret == 0)
		return -EADDRINUSE;
	return unlink(addr->sun_path) < 0 ? -errno : 0;
}

static int api_listen(struct api_server *srv, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX}, tmp = addr;
	int ret;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	ret = api_claim_path(&addr);
	if (ret < 0)
		return ret;
	/*
	 * Bound and listening under a temporary name, then renamed: whoever
	 * sees PATH appear can connect at once.
	 */
	if (snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp.sun_path))
		tmp = addr;
	unlink(tmp.sun_path);
	srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->fd < 0)
		return -errno;
	if (bind(srv->fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0)
		return -errno;
	if (chmod(tmp.sun_path, 0600) < 0 || listen(srv->fd, API_BACKLOG) < 0 ||
	    rename(tmp.sun_path, path) < 0) {
		ret = -errno;
		unlink(tmp.sun_path);
		return ret;
	}
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	return 0;
}

int api_server_start(struct api_ctl *ctl, const char *path, struct api_server **out)
{
	struct api_server *srv = calloc(1, sizeof(*srv));
	int ret;

	if (!srv)
		return -ENOMEM;
	srv->ctl = ctl;
	srv->fd = -1;
	ret = api_listen(srv, path);
	if (ret == 0) {
		srv->daemon = MHD_start_daemon(
		    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			MHD_USE_ITC | MHD_USE_ERROR_LOG,
		    0, NULL, NULL, on_request, srv, MHD_OPTION_LISTEN_SOCKET, srv->fd,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)API_MAX_CONNECTIONS,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_TIMEOUT_S,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_EXTERNAL_LOGGER,
		    on_mhd_log, srv, MHD_OPTION_END);
		if (!srv->daemon)
			ret = -EIO;
	}
	if (ret < 0) {
		log_error("cannot serve the API on %s: %s", path,
			  ret == -EADDRINUSE ? "another process serves this socket"
			  : ret == -EEXIST   ? "the path exists and is not a socket"
					     : strerror(-ret));
		api_server_stop(srv);
		return ret;
	}
	log_info("API listening on %s", path);
	*out = srv;
	return 0;
}

/*
 * Stop accepting, then give connections still open a moment to finish, so
 * the answer to the request that ended the VMM (a stop) reaches its client.
 */
static void api_drain(struct api_server *srv)
{
	const union MHD_DaemonInfo *info;
	MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
	int i;

	if (fd != MHD_INVALID_SOCKET) {
		close(fd);
		srv->fd = -1;
	}
	for (i = 0; i < API_DRAIN_MS / 10; i++) {
		info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (!info || info->num_connections == 0)
			break;
		usleep(10000);
	}
}

void api_server_stop(struct api_server *srv)
{
	if (!srv)
		return;
	/* MHD closes the listening socket unless quiesced (then it is ours). */
	if (srv->daemon) {
		api_drain(srv);
		MHD_stop_daemon(srv->daemon);
	} else if (srv->fd >= 0) {
		close(srv->fd);
	}
	if (srv->path[0])
		unlink(srv->path);
	free(srv);
}
