/*
 * One card's MMDS endpoint on lwIP (Debian's liblwip): an lwIP network
 * interface per card, fed the guest's frames for the MMDS address by the
 * card's transmit path, its output queued for the card's receive path.
 *
 * Threads and lwIP's global state: lwIP keeps its stack in globals (the
 * interface list, the TCP control blocks, the ARP table), so there is one
 * stack per process whatever the number of cards, and mmds_lock serializes
 * every call into it. It runs without lwIP's tcpip thread (lwip_init, not
 * tcpip_init): each card's device thread calls in for its frames and its
 * timerfd, lwIP's own timers run from whichever thread holds the lock. A
 * card's output queue is filled under the lock (possibly from another
 * card's timer run), so the card is woken through its callback and takes
 * the frames under the lock too. Lock order: mmds_lock, then the store's.
 *
 * Every interface has the same address. Replies must leave on the card
 * the request came in on: an accepted connection is bound to its interface
 * (netif_idx), and while a frame is processed its interface is first in
 * lwIP's list, so what lwIP routes by address then (ARP, the SYN-ACK, a
 * reset) goes back there too. Netmask 0: the guest's address, whatever it
 * is, is on the link, resolved by ARP.
 */
#include "mmds/mmds.h"

#include "util/log.h"

#include <lwip/etharp.h>
#include <lwip/init.h>
#include <lwip/ip.h>
#include <lwip/netif.h>
#include <lwip/pbuf.h>
#include <lwip/priv/tcp_priv.h>
#include <lwip/tcp.h>
#include <lwip/timeouts.h>
#include <netif/ethernet.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define FRAME_MAX    1514 /* Ethernet without FCS at lwIP's 1500-byte MTU */
#define OUTQ_MAX     64	  /* frames waiting for the guest's receive buffers, then dropped */
#define MAX_CONNS    16	  /* open HTTP connections per card */
#define MAX_PCBS     64	  /* TCP control blocks (all states, all cards) before a SYN is dropped */
#define IDLE_POLLS   5	  /* 2 s polls without progress before a connection is dropped */
#define TIMER_MAX_MS 1000
#define ETH_HLEN     14
#define ETHTYPE_IPV4 0x0800
#define ETHTYPE_ARPV 0x0806

static const uint8_t mmds_mac[6] = MMDS_MAC;

static pthread_mutex_t mmds_lock = PTHREAD_MUTEX_INITIALIZER; /* lwIP's globals, every queue */
static pthread_once_t lwip_once = PTHREAD_ONCE_INIT;
static struct tcp_pcb *listener; /* port 80 on every interface; lives as long as the process */

struct frame {
	uint16_t len;
	uint8_t data[FRAME_MAX];
};

struct conn;

struct mmds_net {
	struct mmds *store;
	struct netif netif;
	uint32_t ipv4; /* network byte order */
	int timer_fd;
	mmds_wake_fn wake;
	void *opaque;
	struct frame *outq; /* ring of OUTQ_MAX */
	unsigned int outq_head, outq_len;
	uint64_t dropped;   /* output frames the queue could not hold */
	struct conn *conns; /* open connections, for mmds_net_free */
	unsigned int nconns;
};

struct conn {
	struct mmds_net *net;
	struct tcp_pcb *pcb;
	struct conn *next;
	unsigned int idle; /* polls without progress */
	size_t len;	   /* request bytes in buf */
	char *resp;	   /* the response once the head is complete */
	size_t resp_len, resp_off;
	char buf[MMDS_REQ_MAX];
};

static void lwip_setup(void)
{
	lwip_init();
}

/* --- output: lwIP -> the card --- */

static err_t net_linkoutput(struct netif *nif, struct pbuf *p)
{
	struct mmds_net *n = nif->state;
	struct frame *f;

	if (p->tot_len > FRAME_MAX || n->outq_len == OUTQ_MAX) {
		n->dropped++; /* TCP retransmits; ARP asks again */
		return ERR_OK;
	}
	f = &n->outq[(n->outq_head + n->outq_len) % OUTQ_MAX];
	f->len = pbuf_copy_partial(p, f->data, FRAME_MAX, 0);
	n->outq_len++;
	n->wake(n->opaque);
	return ERR_OK;
}

static err_t net_netif_init(struct netif *nif)
{
	nif->name[0] = 'm';
	nif->name[1] = 'd';
	nif->output = etharp_output;
	nif->linkoutput = net_linkoutput;
	nif->mtu = 1500;
	nif->hwaddr_len = 6;
	memcpy(nif->hwaddr, mmds_mac, 6);
	nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
	return ERR_OK;
}

size_t mmds_net_next(struct mmds_net *n, uint8_t *buf, size_t cap)
{
	size_t len = 0;

	pthread_mutex_lock(&mmds_lock);
	if (n->outq_len) {
		const struct frame *f = &n->outq[n->outq_head];

		len = f->len <= cap ? f->len : 0;
		memcpy(buf, f->data, len);
		n->outq_head = (n->outq_head + 1) % OUTQ_MAX;
		n->outq_len--;
	}
	pthread_mutex_unlock(&mmds_lock);
	return len;
}

/* --- HTTP connections --- */

static void conn_forget(struct conn *c)
{
	struct mmds_net *n = c->net;

	for (struct conn **pp = &n->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	n->nconns--;
	free(c->resp);
	free(c);
}

/* Detach from the pcb and close it (abort when closing fails). ERR_ABRT when aborted. */
static err_t conn_close(struct conn *c)
{
	struct tcp_pcb *pcb = c->pcb;
	err_t e = ERR_OK;

	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
	conn_forget(c);
	if (tcp_close(pcb) != ERR_OK) {
		tcp_abort(pcb);
		e = ERR_ABRT;
	}
	return e;
}

/* Queue what the send buffer takes of the response; close once all is queued. */
static err_t conn_send(struct conn *c)
{
	while (c->resp_off < c->resp_len) {
		size_t room = tcp_sndbuf(c->pcb), left = c->resp_len - c->resp_off;
		u16_t chunk = (u16_t)(left < room ? left : room);

		if (!chunk ||
		    tcp_write(c->pcb, c->resp + c->resp_off, chunk, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		c->resp_off += chunk;
	}
	tcp_output(c->pcb);
	return c->resp_off == c->resp_len ? conn_close(c) : ERR_OK;
}

static const char bad_request[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
				  "Content-Length: 0\r\nConnection: close\r\n\r\n";

/* The head is complete (@ret > 0) or malformed (< 0): build the response. */
static err_t conn_respond(struct conn *c, int ret, const struct mmds_request *req)
{
	if (ret < 0 || mmds_http_respond(c->net->store, req, &c->resp, &c->resp_len) < 0) {
		free(c->resp);
		c->resp = strdup(bad_request);
		c->resp_len = c->resp ? sizeof(bad_request) - 1 : 0;
	}
	if (!c->resp) {
		struct tcp_pcb *pcb = c->pcb;

		tcp_arg(pcb, NULL);
		tcp_err(pcb, NULL);
		conn_forget(c);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	return conn_send(c);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct conn *c = arg;
	struct mmds_request req;
	size_t take;
	int ret;

	if (!p) /* the guest closed its side */
		return c->resp ? ERR_OK : conn_close(c);
	tcp_recved(pcb, p->tot_len);
	if (err != ERR_OK || c->resp) { /* a body, or more: one request per connection */
		pbuf_free(p);
		return ERR_OK;
	}
	take = p->tot_len < sizeof(c->buf) - c->len ? p->tot_len : sizeof(c->buf) - c->len;
	c->len += pbuf_copy_partial(p, c->buf + c->len, (u16_t)take, 0);
	pbuf_free(p);
	c->idle = 0;
	ret = mmds_http_parse(c->buf, c->len, &req);
	return ret == 0 ? ERR_OK : conn_respond(c, ret, &req);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct conn *c = arg;

	(void)pcb;
	(void)len;
	c->idle = 0;
	return conn_send(c);
}

static void on_err(void *arg, err_t err)
{
	(void)err;
	if (arg) /* the pcb is gone already */
		conn_forget(arg);
}

/* A connection that makes no progress (a slow or silent guest) is dropped. */
static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	struct conn *c = arg;

	if (++c->idle < IDLE_POLLS)
		return c->resp ? conn_send(c) : ERR_OK;
	tcp_arg(pcb, NULL);
	tcp_err(pcb, NULL);
	conn_forget(c);
	tcp_abort(pcb);
	return ERR_ABRT;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct netif *in = ip_current_input_netif();
	struct mmds_net *n = in ? in->state : NULL;
	struct conn *c;

	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	c = n && n->nconns < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	*c = (struct conn){.net = n, .pcb = pcb, .next = n->conns};
	n->conns = c;
	n->nconns++;
	tcp_bind_netif(pcb, &n->netif); /* replies and retransmissions: this card */
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	tcp_poll(pcb, on_poll, 4);
	return ERR_OK;
}

/* The one listener on port 80, for every interface. */
static int listener_open(void)
{
	struct tcp_pcb *pcb;

	if (listener)
		return 0;
	pcb = tcp_new();
	if (!pcb)
		return -ENOMEM;
	ip_set_option(pcb,
		      SOF_REUSEADDR); /* connections of a removed card may linger in TIME-WAIT */
	if (tcp_bind(pcb, IP_ANY_TYPE, 80) != ERR_OK) {
		tcp_abort(pcb);
		return -EADDRINUSE;
	}
	listener = tcp_listen(pcb);
	if (!listener) {
		tcp_abort(pcb);
		return -ENOMEM;
	}
	tcp_accept(listener, on_accept);
	return 0;
}

/* --- input: the card -> lwIP --- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

bool mmds_net_claims(const struct mmds_net *n, const uint8_t *f, size_t len)
{
	if (len < ETH_HLEN + 20)
		return false;
	switch (be16(f + 12)) {
	case ETHTYPE_ARPV: /* target protocol address at 24 of the ARP packet */
		return len >= ETH_HLEN + 28 && memcmp(f + ETH_HLEN + 24, &n->ipv4, 4) == 0;
	case ETHTYPE_IPV4: /* destination address at 16 of the IPv4 header */
		return (f[ETH_HLEN] >> 4) == 4 && memcmp(f + ETH_HLEN + 16, &n->ipv4, 4) == 0;
	default:
		return false;
	}
}

static unsigned int count_pcbs(struct tcp_pcb *p, struct tcp_pcb **last)
{
	unsigned int k = 0;

	for (; p && k <= MAX_PCBS; p = p->next, k++)
		*last = p;
	return k;
}

/*
 * lwIP here allocates control blocks with malloc, unbounded: a new
 * connection (a SYN) is let in only while fewer than MAX_PCBS exist, the
 * oldest TIME-WAIT one making room if there is one.
 */
static bool syn_admitted(const uint8_t *f, size_t len)
{
	struct tcp_pcb *last_tw = NULL, *last = NULL;
	size_t ihl = (size_t)(f[ETH_HLEN] & 0xf) * 4;
	const uint8_t *tcp = f + ETH_HLEN + ihl;

	if (f[ETH_HLEN + 9] != 6 || ihl < 20 || len < ETH_HLEN + ihl + 14)
		return true; /* not TCP, or lwIP drops it as too short */
	if ((tcp[13] & 0x12) != 0x02)
		return true; /* not a bare SYN */
	if (count_pcbs(tcp_active_pcbs, &last) + count_pcbs(tcp_tw_pcbs, &last_tw) < MAX_PCBS)
		return true;
	if (!last_tw)
		return false;
	tcp_abort(last_tw); /* TIME-WAIT: no callbacks, just freed */
	return true;
}

/*
 * lwIP 2.1's tcp_receive asserts (and Debian's build aborts) on a segment
 * carrying one sequence number of payload or FIN whose sequence number is
 * exactly 2^31 from the connection's rcv_nxt: its left-edge trim takes the
 * segment as overlapping, with an offset of 2^31. No peer sends a segment a
 * quarter of the sequence space away from what it was acknowledged, so one
 * that far from any matching connection's rcv_nxt is dropped here.
 */
static bool seq_in_reach(const uint8_t *f, size_t len)
{
	size_t ihl = (size_t)(f[ETH_HLEN] & 0xf) * 4;
	const uint8_t *ip = f + ETH_HLEN, *tcp = ip + ihl;
	uint32_t src, seq;

	if (ip[9] != 6 || ihl < 20 || len < ETH_HLEN + ihl + 20)
		return true; /* not TCP, or lwIP drops it as too short */
	memcpy(&src, ip + 12, 4);
	seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
	for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
		uint32_t d = seq - pcb->rcv_nxt;

		if (pcb->remote_port == be16(tcp) && pcb->local_port == be16(tcp + 2) &&
		    ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip)) == src &&
		    d + (1U << 30) > (1U << 31))
			return false;
	}
	return true;
}

/* Make @x first in lwIP's interface list: routing by address finds it (see the top). */
static void netif_first(struct netif *x)
{
	struct netif **pp = &netif_list;

	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (*pp && pp != &netif_list) {
		*pp = x->next;
		x->next = netif_list;
		netif_list = x;
	}
}

void mmds_net_input(struct mmds_net *n, const uint8_t *frame, size_t len)
{
	struct pbuf *p;

	if (len < ETH_HLEN || len > FRAME_MAX)
		return;
	pthread_mutex_lock(&mmds_lock);
	if (be16(frame + 12) != ETHTYPE_IPV4 ||
	    (syn_admitted(frame, len) && seq_in_reach(frame, len))) {
		p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
		if (p && pbuf_take(p, frame, (u16_t)len) == ERR_OK) {
			netif_first(&n->netif);
			if (n->netif.input(p, &n->netif) != ERR_OK)
				pbuf_free(p);
		} else if (p) {
			pbuf_free(p);
		}
	}
	pthread_mutex_unlock(&mmds_lock);
}

/* --- timers --- */

static void timer_arm(struct mmds_net *n)
{
	u32_t ms = sys_timeouts_sleeptime();
	struct itimerspec its = {0};

	if (ms > TIMER_MAX_MS)
		ms = TIMER_MAX_MS;
	if (!ms)
		ms = 1;
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (timerfd_settime(n->timer_fd, 0, &its, NULL) < 0)
		log_warn("mmds: cannot arm its timer: %s", strerror(errno));
}

int mmds_net_timer_fd(const struct mmds_net *n)
{
	return n->timer_fd;
}

void mmds_net_timers(struct mmds_net *n)
{
	uint64_t ticks;

	if (read(n->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_warn("mmds: reading its timer: %s", strerror(errno));
	pthread_mutex_lock(&mmds_lock);
	sys_check_timeouts();
	timer_arm(n);
	pthread_mutex_unlock(&mmds_lock);
}

/* --- life cycle --- */

static int net_add_locked(struct mmds_net *n)
{
	ip4_addr_t ip, mask, gw;
	int ret = listener_open();

	if (ret < 0)
		return ret;
	ip4_addr_set_u32(&ip, n->ipv4);
	ip4_addr_set_zero(&mask);
	ip4_addr_set_zero(&gw);
	if (!netif_add(&n->netif, &ip, &mask, &gw, n, net_netif_init, ethernet_input))
		return -ENOSPC;
	netif_set_link_up(&n->netif);
	netif_set_up(&n->netif);
	timer_arm(n);
	return 0;
}

struct mmds_net *mmds_net_new(struct mmds *m, uint32_t ipv4, mmds_wake_fn wake, void *opaque)
{
	struct mmds_net *n = calloc(1, sizeof(*n));
	int ret = -ENOMEM;

	if (!n)
		return NULL;
	*n = (struct mmds_net){.store = m, .ipv4 = htonl(ipv4), .wake = wake, .opaque = opaque};
	n->outq = calloc(OUTQ_MAX, sizeof(*n->outq));
	n->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	pthread_once(&lwip_once, lwip_setup);
	if (n->outq && n->timer_fd >= 0) {
		pthread_mutex_lock(&mmds_lock);
		ret = net_add_locked(n);
		pthread_mutex_unlock(&mmds_lock);
	}
	if (ret == 0)
		return n;
	log_error("mmds: cannot add its network interface: %s", strerror(-ret));
	if (n->timer_fd >= 0)
		close(n->timer_fd);
	free(n->outq);
	free(n);
	return NULL;
}

void mmds_net_free(struct mmds_net *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&mmds_lock);
	while (n->conns) {
		struct tcp_pcb *pcb = n->conns->pcb;

		tcp_arg(pcb, NULL);
		tcp_err(pcb, NULL);
		conn_forget(n->conns);
		tcp_abort(pcb);
	}
	/* Also ends every other connection to the address (lwIP's rule on removal). */
	netif_remove(&n->netif);
	pthread_mutex_unlock(&mmds_lock);
	close(n->timer_fd);
	free(n->outq);
	free(n);
}
