/*
 * virtio-vsock (virtio 1.2, 5.10), stream sockets, with Firecracker's
 * host side: Unix sockets.
 *
 *  - host to guest: a host process connects to the Unix socket PATH and
 *    writes "CONNECT <port>\n"; Banyan sends the guest a REQUEST from host
 *    port P (>= 2^30, allocated here) and, once the guest's listener
 *    answers, writes "OK <P>\n" back; then the socket is the stream.
 *  - guest to host: a guest connecting to CID 2 port N reaches the host
 *    process listening on the Unix socket PATH_N (refused: RST).
 *
 * Flow control is the spec's credit scheme, both ways: the guest may send
 * a connection at most VSOCK_BUF_ALLOC bytes beyond what Banyan has
 * written to its socket (what a socket does not take waits in a buffer of
 * that size; a guest that overruns it gets its connection reset), and
 * Banyan reads a socket only while the guest has credit and receive
 * buffers, straight into those buffers.
 *
 * Everything runs on the transport's device thread. The device's event_fd
 * is its own epoll set holding the listening socket, a wake eventfd and
 * every connection, edge-triggered: readiness is remembered per connection
 * and acted on when credit and buffers allow, so nothing spins while the
 * guest gives no buffers or no credit.
 */
#include "virtio/virtio.h"
#include "util/efd.h"
#include "util/clock.h"

#include "util/log.h"
#include "util/usock.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define VSOCK_QUEUE_SIZE 256
#define VSOCK_RXQ	 0
#define VSOCK_TXQ	 1
#define VSOCK_EVQ	 2
#define VSOCK_HDR_LEN	 44
#define VSOCK_HOST_CID	 2
#define VSOCK_BUF_ALLOC	 (256 * 1024) /* per connection: what the guest may send ahead */
#define VSOCK_MAX_PKT	 (64 * 1024)  /* payload per packet, as Linux sends at most */
#define VSOCK_MAX_CONNS	 512
#define VSOCK_MAX_SEGS	 64
#define VSOCK_RST_QUEUE	 128
#define VSOCK_LINE_MAX	 32	    /* "CONNECT 4294967295\n" */
#define VSOCK_FIRST_PORT (1U << 30) /* host ports Banyan allocates, as Firecracker */
#define VSOCK_BUDGET	 256	    /* packets per turn and direction */
/*
 * Host connections that have not sent their CONNECT line yet: at most this
 * many (a new one closes the oldest), each for at most handshake_ms. Idle
 * clients cannot fill the connection table and lock real ones out.
 */
#define VSOCK_MAX_HANDSHAKES 64
#define VSOCK_HANDSHAKE_MS   5000

#define VIRTIO_VSOCK_TYPE_STREAM 1
enum {
	OP_REQUEST = 1,
	OP_RESPONSE,
	OP_RST,
	OP_SHUTDOWN,
	OP_RW,
	OP_CREDIT_UPDATE,
	OP_CREDIT_REQUEST,
};
#define SHUT_F_RCV			   1
#define SHUT_F_SEND			   2
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0

#define STATE_VERSION 1

struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct vsock_hdr) == VSOCK_HDR_LEN, "virtio_vsock_hdr is 44 bytes");

enum conn_state {
	CONN_HANDSHAKE,	 /* host connected to PATH, its CONNECT line not read yet */
	CONN_CONNECTING, /* REQUEST sent to the guest, waiting for RESPONSE */
	CONN_ESTABLISHED,
	CONN_CLOSING, /* the guest shut both ways: flush, close, RST */
};

/* Control packets a connection owes the guest. */
#define PEND_REQUEST	    0x1
#define PEND_RESPONSE	    0x2
#define PEND_CREDIT_UPDATE  0x4
#define PEND_CREDIT_REQUEST 0x8
#define PEND_SHUTDOWN	    0x10

struct vsock_conn {
	struct vsock_conn *next;
	int fd;
	enum conn_state state;
	uint64_t deadline_ms; /* CONN_HANDSHAKE: closed if no CONNECT line by then */
	uint32_t local_port;  /* the host's port */
	uint32_t peer_port;   /* the guest's port */
	uint32_t pending;     /* PEND_* */
	/* Credit the guest gave: it can take peer_buf_alloc - (tx_cnt - peer_fwd_cnt). */
	uint32_t peer_buf_alloc;
	uint32_t peer_fwd_cnt;
	uint32_t tx_cnt; /* payload bytes sent to the guest */
	/* Credit we give: bytes from the guest written to the socket, last told. */
	uint32_t fwd_cnt;
	uint32_t fwd_cnt_told;
	uint8_t *buf; /* guest bytes the socket did not take (ring, VSOCK_BUF_ALLOC) */
	uint32_t buf_head, buf_len;
	bool readable; /* the socket may have bytes (an edge was seen) */
	bool writable;
	bool hup;	     /* the host side closed completely */
	bool host_eof;	     /* read gave 0: nothing more from the host */
	bool peer_shut_send; /* the guest sends no more */
	bool peer_shut_rcv;  /* the guest receives no more */
	bool shut_wr_done;   /* shutdown(SHUT_WR) applied to the socket */
	bool credit_requested;
	uint8_t shut_flags; /* the SHUTDOWN owed */
	char line[VSOCK_LINE_MAX];
	uint32_t line_len;
};

struct vsock_rst {
	uint32_t local_port, peer_port;
};

struct virtio_vsock {
	struct virtio_dev vdev;
	uint64_t cid; /* config space: guest_cid */
	char path[VIRTIO_VSOCK_PATH_MAX + 1];
	int listen_fd;
	int epfd; /* vdev.event_fd */
	int wake_fd;
	int timer_fd; /* the earliest handshake deadline (armed while nhandshakes) */
	struct vsock_conn *conns;
	unsigned int nconns;
	unsigned int nhandshakes; /* conns in CONN_HANDSHAKE */
	unsigned int handshake_ms;
	uint32_t next_port;
	struct vsock_rst rst[VSOCK_RST_QUEUE];
	unsigned int rst_head, rst_len;
	bool rx_stalled;  /* the guest gave no receive buffers: its kick resumes */
	bool reset_event; /* a TRANSPORT_RESET is owed on the event queue */
	struct iovec iov[VSOCK_MAX_SEGS];
	struct iovec slice[VSOCK_MAX_SEGS];
};

static struct virtio_vsock *to_vsock(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_vsock, vdev);
}

static void vsock_wake(struct virtio_vsock *v)
{
	(void)efd_signal(v->wake_fd);
}

/* --- connections --- */

static struct vsock_conn *conn_find(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	for (struct vsock_conn *c = v->conns; c; c = c->next)
		if (c->local_port == local && c->peer_port == peer && c->state != CONN_HANDSHAKE)
			return c;
	return NULL;
}

static struct vsock_conn *conn_new(struct virtio_vsock *v, int fd, enum conn_state state)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	struct vsock_conn *c;

	if (v->nconns >= VSOCK_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->state = state;
	c->writable = true; /* until a send says otherwise */
	ev.data.ptr = c;
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	c->next = v->conns;
	v->conns = c;
	v->nconns++;
	return c;
}

static void conn_free(struct virtio_vsock *v, struct vsock_conn *c)
{
	struct vsock_conn **pp;

	for (pp = &v->conns; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	v->nconns--;
	if (c->state == CONN_HANDSHAKE)
		v->nhandshakes--;
	close(c->fd);
	free(c->buf);
	free(c);
}

static void vsock_close_all(struct virtio_vsock *v)
{
	while (v->conns)
		conn_free(v, v->conns);
	v->rst_len = 0;
}

/* Queue a RST for (local, peer); the oldest is dropped when the queue is full. */
static void queue_rst(struct virtio_vsock *v, uint32_t local, uint32_t peer)
{
	if (v->rst_len == VSOCK_RST_QUEUE) {
		v->rst_head = (v->rst_head + 1) % VSOCK_RST_QUEUE;
		v->rst_len--;
	}
	v->rst[(v->rst_head + v->rst_len) % VSOCK_RST_QUEUE] = (struct vsock_rst){local, peer};
	v->rst_len++;
}

/* Drop the connection and tell the guest (RST). */
static void conn_reset(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->state != CONN_HANDSHAKE)
		queue_rst(v, c->local_port, c->peer_port);
	conn_free(v, c);
}

static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd_cnt;

	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

/* Guest bytes waiting in the ring to the socket; 0 when it took them all, -1 reset. */
static int conn_flush(struct virtio_vsock *v, struct vsock_conn *c)
{
	while (c->buf_len) {
		uint32_t chunk = VSOCK_BUF_ALLOC - c->buf_head;
		ssize_t w;

		if (chunk > c->buf_len)
			chunk = c->buf_len;
		w = send(c->fd, c->buf + c->buf_head, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->writable = false;
			return 0;
		}
		if (w <= 0) {
			conn_reset(v, c);
			return -1;
		}
		c->buf_head = (c->buf_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	c->buf_head = 0;
	return 0;
}

/*
 * Owe the guest a credit update once a quarter of the buffer was forwarded
 * since it last heard: before that it still has three quarters of credit.
 */
static void conn_maybe_credit(struct vsock_conn *c)
{
	if (c->fwd_cnt - c->fwd_cnt_told >= VSOCK_BUF_ALLOC / 4)
		c->pending |= PEND_CREDIT_UPDATE;
}

/* The host's "CONNECT <port>\n": read up to the newline only (data may follow it). */
static void conn_handshake(struct virtio_vsock *v, struct vsock_conn *c)
{
	char *nl, *end;
	unsigned long port;
	ssize_t r = recv(c->fd, c->line + c->line_len, sizeof(c->line) - 1 - c->line_len,
			 MSG_PEEK | MSG_DONTWAIT);

	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->readable = false;
		return;
	}
	if (r <= 0) {
		conn_free(v, c);
		return;
	}
	c->line[c->line_len + (size_t)r] = '\0';
	nl = strchr(c->line + c->line_len, '\n');
	r = nl ? nl - (c->line + c->line_len) + 1 : r;
	if (recv(c->fd, c->line + c->line_len, (size_t)r, MSG_DONTWAIT) != r) {
		conn_free(v, c);
		return;
	}
	c->line_len += (uint32_t)r;
	if (!nl) {
		if (c->line_len >= sizeof(c->line) - 1)
			conn_free(v, c); /* no newline within the limit: not our protocol */
		return;
	}
	*nl = '\0';
	errno = 0;
	port = strncmp(c->line, "CONNECT ", 8) == 0 ? strtoul(c->line + 8, &end, 10) : 0;
	if (!port || errno || *end || port > UINT32_MAX || c->line[8] < '0' || c->line[8] > '9') {
		log_guest_debug(v, "vsock: host connection with a bad handshake line, closed");
		conn_free(v, c);
		return;
	}
	do {
		c->local_port = v->next_port++;
		if (v->next_port == 0)
			v->next_port = VSOCK_FIRST_PORT;
	} while (conn_find(v, c->local_port, (uint32_t)port));
	c->peer_port = (uint32_t)port;
	c->state = CONN_CONNECTING;
	v->nhandshakes--;
	c->pending |= PEND_REQUEST;
}

/* Work a connection's socket readiness can do without the guest. */
static void conn_service(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->state == CONN_HANDSHAKE) {
		if (c->readable || c->hup)
			conn_handshake(v, c);
		return;
	}
	if (c->state == CONN_CONNECTING && c->hup) {
		conn_reset(v, c); /* the host gave up before the guest answered */
		return;
	}
	if (c->writable && c->buf_len && conn_flush(v, c) < 0)
		return;
	if (c->buf_len)
		return;
	if (c->state == CONN_CLOSING) {
		conn_reset(v, c);
		return;
	}
	if (c->peer_shut_send && !c->shut_wr_done) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr_done = true;
	}
	if (c->state == CONN_ESTABLISHED)
		conn_maybe_credit(c);
}

/* The handshaking connection with the earliest deadline, or NULL. */
static struct vsock_conn *handshake_oldest(struct virtio_vsock *v)
{
	struct vsock_conn *old = NULL;

	for (struct vsock_conn *c = v->conns; c; c = c->next)
		if (c->state == CONN_HANDSHAKE && (!old || c->deadline_ms < old->deadline_ms))
			old = c;
	return old;
}

/* Arm the timer for the earliest handshake deadline; disarm it when none is left. */
static void handshake_timer_arm(struct virtio_vsock *v)
{
	struct vsock_conn *c = handshake_oldest(v);
	struct itimerspec its = {0};

	if (c) {
		its.it_value.tv_sec = (time_t)(c->deadline_ms / 1000);
		its.it_value.tv_nsec = (long)(c->deadline_ms % 1000) * 1000000 + 1;
	}
	if (timerfd_settime(v->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_warn("vsock: cannot arm the handshake timer: %s", strerror(errno));
}

/* Close the host connections whose CONNECT line did not come in time. */
static void handshake_expire(struct virtio_vsock *v)
{
	struct vsock_conn *c, *next;
	uint64_t now = now_ms(), val;

	if (read(v->timer_fd, &val, sizeof(val)) < 0)
		(void)0; /* not expired: look anyway */
	for (c = v->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_HANDSHAKE && c->deadline_ms <= now)
			conn_free(v, c);
	}
	handshake_timer_arm(v);
}

static void vsock_accept(struct virtio_vsock *v)
{
	for (;;) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_conn *c;

		if (fd < 0)
			return;
		if (v->nhandshakes >= VSOCK_MAX_HANDSHAKES) /* the oldest is the likeliest idle */
			conn_free(v, handshake_oldest(v));
		c = conn_new(v, fd, CONN_HANDSHAKE);
		if (!c) {
			log_guest_warn(
			    v, "vsock: too many connections; a host connection was refused");
			continue;
		}
		c->deadline_ms = now_ms() + v->handshake_ms;
		if (++v->nhandshakes == 1)
			handshake_timer_arm(v);
	}
}

/* --- to the guest (receive queue) --- */

static void fill_hdr(struct virtio_vsock *v, struct vsock_hdr *h, uint32_t local, uint32_t peer,
		     uint16_t op)
{
	*h = (struct vsock_hdr){.src_cid = VSOCK_HOST_CID,
				.dst_cid = v->cid,
				.src_port = local,
				.dst_port = peer,
				.type = VIRTIO_VSOCK_TYPE_STREAM,
				.op = op,
				.buf_alloc = VSOCK_BUF_ALLOC};
}

/* The next receive chain. 1 with one, 0 none (stalled), -1 the device broke. */
static int rx_pop(struct virtio_vsock *v, struct vq_chain *ch)
{
	int r;

	*ch = (struct vq_chain){.iov = v->iov, .cap = VSOCK_MAX_SEGS};
	r = virtio_pop(&v->vdev, VSOCK_RXQ, ch);
	if (r == 0)
		v->rx_stalled = true;
	if (r <= 0)
		return r < 0 ? -1 : 0;
	if (ch->nout || ch->in_len < VSOCK_HDR_LEN) {
		virtio_fail(&v->vdev,
			    "queue 0: receive buffer not writable or smaller than the header");
		return -1;
	}
	return 1;
}

static void rx_put(struct virtio_vsock *v, struct vq_chain *ch, struct vsock_hdr *h)
{
	iov_from_buf(ch->iov, ch->nin, 0, h, sizeof(*h));
	vq_push(&v->vdev.vqs[VSOCK_RXQ], ch->head, VSOCK_HDR_LEN + h->len);
	atomic_fetch_add_explicit(&virtio_stats(&v->vdev)->requests, 1, memory_order_relaxed);
}

/* Data from the socket straight into the chain. >0 bytes, 0 nothing now, -1 EOF. */
static ssize_t conn_read_into(struct virtio_vsock *v, struct vsock_conn *c, struct vq_chain *ch)
{
	uint64_t room = ch->in_len - VSOCK_HDR_LEN, credit = peer_credit(c);
	uint64_t want = room < credit ? room : credit;
	int n;
	ssize_t r;

	if (want > VSOCK_MAX_PKT)
		want = VSOCK_MAX_PKT;
	n = iov_slice(ch->iov, ch->nin, VSOCK_HDR_LEN, want, v->slice, VSOCK_MAX_SEGS);
	if (n <= 0)
		return 0;
	r = readv(c->fd, v->slice, n);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		c->readable = false;
		return 0;
	}
	return r <= 0 ? -1 : r;
}

/* Can the connection send data now? Asks for credit once when it has none. */
static bool conn_can_send_data(struct vsock_conn *c)
{
	if (c->state != CONN_ESTABLISHED || !c->readable || c->host_eof || c->peer_shut_rcv)
		return false;
	if (peer_credit(c) == 0) {
		if (!c->credit_requested)
			c->pending |= PEND_CREDIT_REQUEST;
		c->credit_requested = true;
		return false;
	}
	return true;
}

/* The control packet a connection owes first, in protocol order; 0 none. */
static uint16_t conn_next_ctrl(const struct vsock_conn *c, bool data_first)
{
	if (c->pending & PEND_REQUEST)
		return OP_REQUEST;
	if (c->pending & PEND_RESPONSE)
		return OP_RESPONSE;
	if (data_first)
		return 0;
	if (c->pending & PEND_CREDIT_UPDATE)
		return OP_CREDIT_UPDATE;
	if (c->pending & PEND_CREDIT_REQUEST)
		return OP_CREDIT_REQUEST;
	if (c->pending & PEND_SHUTDOWN)
		return OP_SHUTDOWN;
	return 0;
}

static uint32_t op_pend_bit(uint16_t op)
{
	switch (op) {
	case OP_REQUEST:
		return PEND_REQUEST;
	case OP_RESPONSE:
		return PEND_RESPONSE;
	case OP_CREDIT_UPDATE:
		return PEND_CREDIT_UPDATE;
	case OP_CREDIT_REQUEST:
		return PEND_CREDIT_REQUEST;
	default:
		return PEND_SHUTDOWN;
	}
}

/*
 * One packet from @c into a receive chain, if it has one to send.
 * 1 sent, 0 nothing to send, -1 no buffers or the device broke (stop).
 */
static int conn_rx_one(struct virtio_vsock *v, struct vsock_conn *c)
{
	bool data = conn_can_send_data(c);
	uint16_t op = conn_next_ctrl(c, data);
	struct vq_chain ch;
	struct vsock_hdr h;
	ssize_t r = 0;

	if (!op && !data)
		return 0;
	if (rx_pop(v, &ch) <= 0)
		return -1;
	if (!op) {
		r = conn_read_into(v, c, &ch);
		if (r < 0) { /* EOF: the host sends no more (and reads no more if it hung up) */
			c->host_eof = true;
			c->shut_flags = SHUT_F_SEND | (c->hup ? SHUT_F_RCV : 0);
			c->pending |= PEND_SHUTDOWN;
			r = 0;
		}
		op = r > 0 ? OP_RW : conn_next_ctrl(c, false);
		if (!op) {
			vq_unpop(&v->vdev.vqs[VSOCK_RXQ]);
			return 0;
		}
	}
	fill_hdr(v, &h, c->local_port, c->peer_port, op);
	h.fwd_cnt = c->fwd_cnt;
	h.len = op == OP_RW ? (uint32_t)r : 0;
	h.flags = op == OP_SHUTDOWN ? c->shut_flags : 0;
	c->fwd_cnt_told = c->fwd_cnt;
	c->pending &= ~PEND_CREDIT_UPDATE; /* every packet carries fwd_cnt */
	if (op != OP_RW)
		c->pending &= ~op_pend_bit(op);
	if (op == OP_RW) {
		c->tx_cnt += (uint32_t)r;
		dev_stats_in(virtio_stats(&v->vdev), (uint64_t)r);
	}
	rx_put(v, &ch, &h);
	return 1;
}

static int rst_rx_one(struct virtio_vsock *v)
{
	struct vq_chain ch;
	struct vsock_hdr h;
	struct vsock_rst *r = &v->rst[v->rst_head];

	if (rx_pop(v, &ch) <= 0)
		return -1;
	fill_hdr(v, &h, r->local_port, r->peer_port, OP_RST);
	rx_put(v, &ch, &h);
	v->rst_head = (v->rst_head + 1) % VSOCK_RST_QUEUE;
	v->rst_len--;
	return 1;
}

/* Fill receive buffers: RSTs, then one packet per connection per round. */
static void vsock_rx(struct virtio_vsock *v)
{
	unsigned int budget = VSOCK_BUDGET, sent = 0;
	bool more = true;
	int r;

	if (virtio_is_broken(&v->vdev) || !v->vdev.vqs[VSOCK_RXQ].active)
		return;
	v->rx_stalled = false;
	while (v->rst_len && budget && rst_rx_one(v) > 0)
		budget--, sent++;
	while (more && budget && !v->rx_stalled && !virtio_is_broken(&v->vdev)) {
		struct vsock_conn *c, *next;

		more = false;
		for (c = v->conns; c && budget; c = next) {
			next = c->next;
			r = conn_rx_one(v, c);
			if (r < 0)
				break;
			if (r > 0) {
				more = true;
				budget--, sent++;
			}
		}
	}
	if (sent)
		virtio_used(&v->vdev, VSOCK_RXQ);
	if (!budget)
		vsock_wake(v);
}

/* --- from the guest (transmit queue) --- */

/* The guest's REQUEST to host port @port: connect to PATH_port. */
static void guest_connect(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vsock_conn *c;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->path, h->dst_port);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_guest_debug(v, "vsock: guest port %u to host port %u: %s: %s", h->src_port,
				h->dst_port, sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		queue_rst(v, h->dst_port, h->src_port);
		return;
	}
	c = conn_new(v, fd, CONN_ESTABLISHED);
	if (!c) {
		queue_rst(v, h->dst_port, h->src_port);
		return;
	}
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending |= PEND_RESPONSE;
}

/* RW payload to the socket, the rest into the ring. 0, or -1 when the connection was reset. */
static int conn_write(struct virtio_vsock *v, struct vsock_conn *c, const struct vq_chain *ch,
		      uint32_t len)
{
	struct msghdr m = {.msg_iov = v->slice};
	uint32_t done = 0;
	ssize_t w;
	int n;

	if (c->buf_len + len > VSOCK_BUF_ALLOC) {
		log_guest_debug(v, "vsock: guest port %u overran its credit: connection reset",
				c->peer_port);
		conn_reset(v, c);
		return -1;
	}
	n = iov_slice(ch->iov, ch->nout, VSOCK_HDR_LEN, len, v->slice, VSOCK_MAX_SEGS);
	if (n < 0) {
		conn_reset(v, c);
		return -1;
	}
	if (!c->buf_len && c->writable) {
		m.msg_iovlen = (size_t)n;
		w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_reset(v, c);
			return -1;
		}
		done = w > 0 ? (uint32_t)w : 0;
		if (done < len)
			c->writable = false;
		c->fwd_cnt += done;
	}
	if (done < len && !c->buf && !(c->buf = malloc(VSOCK_BUF_ALLOC))) {
		conn_reset(v, c);
		return -1;
	}
	for (uint32_t off = done; off < len;) {
		uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
		uint32_t chunk = VSOCK_BUF_ALLOC - tail;

		if (chunk > len - off)
			chunk = len - off;
		iov_to_buf(ch->iov, ch->nout, VSOCK_HDR_LEN + off, c->buf + tail, chunk);
		c->buf_len += chunk;
		off += chunk;
	}
	dev_stats_out(virtio_stats(&v->vdev), len);
	return 0;
}

static void conn_tx(struct virtio_vsock *v, struct vsock_conn *c, const struct vsock_hdr *h,
		    const struct vq_chain *ch)
{
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (peer_credit(c))
		c->credit_requested = false;
	switch (h->op) {
	case OP_RESPONSE: {
		char ok[24];
		int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

		if (c->state != CONN_CONNECTING ||
		    send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
			conn_reset(v, c);
			return;
		}
		c->state = CONN_ESTABLISHED;
		return;
	}
	case OP_RW:
		if (c->state != CONN_ESTABLISHED || c->peer_shut_send)
			conn_reset(v, c);
		else
			conn_write(v, c, ch, h->len);
		return;
	case OP_CREDIT_UPDATE:
		return;
	case OP_CREDIT_REQUEST:
		c->pending |= PEND_CREDIT_UPDATE;
		return;
	case OP_SHUTDOWN:
		c->peer_shut_rcv |= !!(h->flags & SHUT_F_RCV);
		c->peer_shut_send |= !!(h->flags & SHUT_F_SEND);
		if (c->peer_shut_rcv && c->peer_shut_send)
			c->state = CONN_CLOSING;
		return;
	case OP_RST:
		conn_free(v, c);
		return;
	default:
		conn_reset(v, c);
		return;
	}
}

/* One packet from the guest. 0, or -1 when the chain broke the device. */
static int vsock_tx_one(struct virtio_vsock *v, const struct vq_chain *ch)
{
	struct vsock_hdr h;
	struct vsock_conn *c;

	if (ch->nin || ch->out_len < VSOCK_HDR_LEN) {
		virtio_fail(&v->vdev,
			    "queue 1: packet without a whole header or with writable buffers");
		return -1;
	}
	iov_to_buf(ch->iov, ch->nout, 0, &h, sizeof(h));
	if (h.len > ch->out_len - VSOCK_HDR_LEN || h.len > VSOCK_BUF_ALLOC) {
		virtio_fail(&v->vdev, "queue 1: packet length beyond its buffers");
		return -1;
	}
	if (h.src_cid != v->cid || h.dst_cid != VSOCK_HOST_CID ||
	    h.type != VIRTIO_VSOCK_TYPE_STREAM) {
		if (h.op != OP_RST)
			queue_rst(v, h.dst_port, h.src_port);
		return 0;
	}
	c = conn_find(v, h.dst_port, h.src_port);
	if (h.op == OP_REQUEST) {
		if (c)
			conn_reset(v, c);
		else
			guest_connect(v, &h);
	} else if (c) {
		conn_tx(v, c, &h, ch);
	} else if (h.op != OP_RST) {
		queue_rst(v, h.dst_port, h.src_port);
	}
	return 0;
}

static void vsock_tx(struct virtio_vsock *v)
{
	struct vq_chain ch = {.iov = v->iov, .cap = VSOCK_MAX_SEGS};
	unsigned int budget = VSOCK_BUDGET;
	bool pushed = false;

	while (budget && virtio_pop(&v->vdev, VSOCK_TXQ, &ch) > 0) {
		if (vsock_tx_one(v, &ch) < 0)
			return;
		vq_push(&v->vdev.vqs[VSOCK_TXQ], ch.head, 0);
		atomic_fetch_add_explicit(&virtio_stats(&v->vdev)->requests, 1,
					  memory_order_relaxed);
		pushed = true;
		budget--;
	}
	if (pushed)
		virtio_used(&v->vdev, VSOCK_TXQ);
	if (!budget)
		vsock_wake(v);
}

/* --- the event queue --- */

static void vsock_send_event(struct virtio_vsock *v)
{
	struct iovec iov[4];
	struct vq_chain ch = {.iov = iov, .cap = 4};
	uint32_t id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET;
	int r;

	if (!v->reset_event || !v->vdev.vqs[VSOCK_EVQ].active || virtio_is_broken(&v->vdev))
		return;
	r = virtio_pop(&v->vdev, VSOCK_EVQ, &ch);
	if (r <= 0)
		return; /* the event queue's kick tries again */
	if (ch.nout || ch.in_len < sizeof(id)) {
		virtio_fail(&v->vdev, "queue 2: event buffer not writable or too small");
		return;
	}
	iov_from_buf(ch.iov, ch.nin, 0, &id, sizeof(id));
	vq_push(&v->vdev.vqs[VSOCK_EVQ], ch.head, sizeof(id));
	virtio_used(&v->vdev, VSOCK_EVQ);
	v->reset_event = false;
}

/* --- the device operations (transport lock held) --- */

static void vsock_service_all(struct virtio_vsock *v)
{
	struct vsock_conn *c, *next;

	for (c = v->conns; c; c = next) {
		next = c->next;
		conn_service(v, c);
	}
}

static void vsock_notify(struct virtio_dev *vdev, unsigned int q)
{
	struct virtio_vsock *v = to_vsock(vdev);

	if (q == VSOCK_TXQ)
		vsock_tx(v);
	else if (q == VSOCK_EVQ)
		vsock_send_event(v);
	vsock_service_all(v);
	vsock_rx(v);
}

static void vsock_event(struct virtio_dev *vdev)
{
	struct virtio_vsock *v = to_vsock(vdev);
	struct epoll_event ev[64];
	bool accept = false, expired = false;
	int n = epoll_wait(v->epfd, ev, 64, 0);

	/* Flags only: a connection closed now could still have an entry further on. */
	for (int i = 0; i < n; i++) {
		struct vsock_conn *c = ev[i].data.ptr;

		if (ev[i].data.ptr == &v->listen_fd) {
			accept = true;
		} else if (ev[i].data.ptr == &v->timer_fd) {
			expired = true;
		} else if (ev[i].data.ptr == &v->wake_fd) {
			(void)efd_drain(v->wake_fd);
		} else {
			c->readable |=
			    !!(ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR));
			c->writable |= !!(ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR));
			c->hup |= !!(ev[i].events & (EPOLLHUP | EPOLLERR));
		}
	}
	if (expired)
		handshake_expire(v);
	if (accept)
		vsock_accept(v);
	if (virtio_is_broken(vdev))
		return;
	vsock_service_all(v);
	if (v->vdev.acked || v->vdev.vqs[VSOCK_TXQ].active) {
		vsock_send_event(v);
		vsock_tx(v);
		vsock_rx(v);
	}
}

static void vsock_config_read(struct virtio_dev *vdev, uint64_t offset, void *data, uint32_t len)
{
	struct virtio_vsock *v = to_vsock(vdev);

	virtio_config_bytes(&v->cid, sizeof(v->cid), offset, data, len); /* le64 guest_cid */
}

static void vsock_reset(struct virtio_dev *vdev)
{
	struct virtio_vsock *v = to_vsock(vdev);

	vsock_close_all(v);
	v->rx_stalled = false;
	v->reset_event = false;
}

/*
 * State: the CID. Connections live in host sockets and are not saved: a
 * loaded device owes the guest a TRANSPORT_RESET event, which makes Linux
 * drop its connections and read the CID again. A loaded CID is a guest's
 * (as every other way to set one): never the host's, a reserved one, or
 * one a clone's CID + 1 + index would wrap around from.
 */
static int vsock_state(struct virtio_dev *vdev, struct state_io *io)
{
	struct virtio_vsock *v = to_vsock(vdev);
	uint8_t version = STATE_VERSION;
	uint64_t cid = v->cid;

	state_u8(io, &version);
	if (version != STATE_VERSION)
		return -EBADMSG;
	state_u64(io, &cid);
	if (io->loading && !io->err && (cid < VIRTIO_VSOCK_CID_MIN || cid > VIRTIO_VSOCK_CID_MAX))
		io->err = -EBADMSG;
	if (io->loading && !io->err) {
		v->cid = cid;
		vsock_close_all(v);
		v->reset_event = true;
		vsock_wake(v);
	}
	return io->err;
}

static void vsock_destroy(struct virtio_dev *vdev)
{
	struct virtio_vsock *v = to_vsock(vdev);

	vsock_close_all(v);
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unlink(v->path);
	}
	if (v->epfd >= 0)
		close(v->epfd);
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	if (v->timer_fd >= 0)
		close(v->timer_fd);
	free(v);
}

/* Give the guest CID @cid: connections are dropped, TRANSPORT_RESET makes Linux re-read it. */
static void vsock_change_cid(struct virtio_vsock *v, uint32_t cid)
{
	v->cid = cid;
	vsock_close_all(v);
	v->reset_event = true;
	vsock_wake(v);
}

/* A clone must not answer for its snapshot's CID: it takes the snapshot's + 1 + index. */
static int vsock_clone(struct virtio_dev *vdev, const struct dev_clone *c)
{
	struct virtio_vsock *v = to_vsock(vdev);
	uint64_t cid = v->cid + 1 + (uint64_t)c->index;

	if (c->index < 0)
		return 0;
	if (cid >= UINT32_MAX)
		return -ERANGE;
	log_info("clone %d: vsock CID %u", c->index, (uint32_t)cid);
	vsock_change_cid(v, (uint32_t)cid);
	return 0;
}

static const struct virtio_dev_ops virtio_vsock_ops = {
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .nqueues = 3,
    .queue_max = VSOCK_QUEUE_SIZE,
    .config_read = vsock_config_read,
    .notify = vsock_notify,
    .event = vsock_event,
    .reset = vsock_reset,
    .state = vsock_state,
    .clone = vsock_clone,
    .destroy = vsock_destroy,
};

/* --- the host side --- */

static int vsock_listen(struct virtio_vsock *v)
{
	int ret = usock_listen(v->path, 128);

	if (ret < 0) {
		log_error("vsock: cannot listen on %s: %s", v->path,
			  ret == -EADDRINUSE ? "another process listens on it (another VM?)"
			  : ret == -EEXIST   ? "it exists and is not a socket (left alone)"
					     : strerror(-ret));
		return ret; /* listen_fd stays -1: destroy must not remove a path that is not ours
			     */
	}
	v->listen_fd = ret;
	return 0;
}

static int vsock_setup_fds(struct virtio_vsock *v)
{
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &v->listen_fd};
	struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &v->wake_fd};
	struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &v->timer_fd};

	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	v->wake_fd = efd_create();
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (v->epfd < 0 || v->wake_fd < 0 || v->timer_fd < 0 ||
	    epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->wake_fd, &wev) < 0 ||
	    epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->timer_fd, &tev) < 0 ||
	    epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->listen_fd, &lev) < 0) {
		log_error("vsock: cannot set up: %s", strerror(errno));
		return -errno;
	}
	v->vdev.event_fd = v->epfd;
	return 0;
}

/*
 * A clone's device: its own host socket "PATH.index" (the snapshot's is
 * another VM's) and the CID its clone operation gives it, so a reboot keeps
 * the clone's.
 */
static void vsock_clone_config(struct vsock_config *cfg, const struct dev_instance *inst,
			       char *path, size_t len)
{
	snprintf(path, len, "%s.%u", cfg->uds_path ? cfg->uds_path : "", inst->clone_index);
	cfg->uds_path = path;
	if (cfg->cid >= 3 && (uint64_t)cfg->cid + 1 + inst->clone_index < UINT32_MAX)
		cfg->cid += 1 + inst->clone_index;
}

struct virtio_dev *virtio_vsock_create(const struct vsock_config *config,
				       const struct dev_instance *inst)
{
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	struct vsock_config c = *config, *cfg = &c;
	char path[4096];

	if (inst && inst->clone && config->uds_path)
		vsock_clone_config(cfg, inst, path, sizeof(path));
	if (!v) {
		log_error("virtio-vsock: out of memory");
		return NULL;
	}
	v->listen_fd = v->epfd = v->wake_fd = v->timer_fd = -1;
	v->vdev = (struct virtio_dev){.ops = &virtio_vsock_ops, .id = "vsock0", .event_fd = -1};
	v->cid = cfg->cid;
	v->next_port = VSOCK_FIRST_PORT;
	v->handshake_ms = cfg->handshake_ms ? cfg->handshake_ms : VSOCK_HANDSHAKE_MS;
	if (cfg->cid < VIRTIO_VSOCK_CID_MIN || cfg->cid > VIRTIO_VSOCK_CID_MAX || !cfg->uds_path ||
	    strlen(cfg->uds_path) >= sizeof(v->path)) {
		log_error("vsock: bad configuration (CID %u, socket %s)", cfg->cid,
			  cfg->uds_path ? cfg->uds_path : "(none)");
		free(v);
		return NULL;
	}
	snprintf(v->path, sizeof(v->path), "%s", cfg->uds_path);
	if (vsock_listen(v) < 0 || vsock_setup_fds(v) < 0) {
		vsock_destroy(&v->vdev);
		return NULL;
	}
	log_info("vsock0: guest CID %u, host socket %s (guest connections to port N reach %s_N)",
		 cfg->cid, v->path, v->path);
	return &v->vdev;
}

int virtio_vsock_set_cid(struct virtio_dev *vdev, uint32_t cid)
{
	struct virtio_vsock *v;

	if (!vdev || vdev->ops != &virtio_vsock_ops || cid < 3 || cid == UINT32_MAX)
		return -EINVAL;
	v = to_vsock(vdev);
	virtio_lock(vdev);
	vsock_change_cid(v, cid);
	virtio_unlock(vdev);
	return 0;
}
