/* The serial console on a Unix socket: scrollback, readers, one writer. */
#include "vmm/console_sock.h"

#include "util/efd.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/usock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Every field belongs to the thread once it runs; stop_fd is how others reach it. */
struct consock {
	pthread_t thread;
	int listen_fd, out_rd, in_wr, log_fd, stop_fd;
	int clients[CONSOCK_CLIENTS];
	unsigned int nclients;
	int writer;   /* the client fd whose input reaches the guest, or -1 */
	bool out_eof; /* the output pipe ended (the VM is gone) */
	bool running; /* the thread was started */
	uint8_t ring[CONSOCK_RING];
	uint64_t total; /* bytes ever put in the ring: the next one goes at total % size */
};

static void ring_put(struct consock *cs, const uint8_t *p, size_t n)
{
	size_t at, k;

	if (n > CONSOCK_RING) {
		cs->total += n - CONSOCK_RING;
		p += n - CONSOCK_RING;
		n = CONSOCK_RING;
	}
	while (n) {
		at = (size_t)(cs->total % CONSOCK_RING);
		k = CONSOCK_RING - at < n ? CONSOCK_RING - at : n;
		memcpy(cs->ring + at, p, k);
		cs->total += k;
		p += k;
		n -= k;
	}
}

/* Never waits for a client: what its socket buffer cannot take now is its loss. */
static void client_send(int fd, const void *p, size_t n)
{
	(void)send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The scrollback, oldest byte first. */
static void send_ring(struct consock *cs, int fd)
{
	size_t at = (size_t)(cs->total % CONSOCK_RING);

	if (cs->total > CONSOCK_RING)
		client_send(fd, cs->ring + at, CONSOCK_RING - at);
	client_send(fd, cs->ring, at);
}

/* Output from the guest: ring, log, every client. Returns read()'s result. */
static ssize_t pass_output(struct consock *cs)
{
	uint8_t buf[4096];
	ssize_t n = read(cs->out_rd, buf, sizeof(buf));
	unsigned int i;

	if (n <= 0)
		return n;
	ring_put(cs, buf, (size_t)n);
	if (cs->log_fd >= 0 && write(cs->log_fd, buf, (size_t)n) < 0)
		cs->log_fd = -1; /* a full disk: the console still works */
	for (i = 0; i < cs->nclients; i++)
		client_send(cs->clients[i], buf, (size_t)n);
	return n;
}

static void accept_client(struct consock *cs)
{
	int fd = accept4(cs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (cs->nclients == CONSOCK_CLIENTS) {
		close(fd);
		return;
	}
	send_ring(cs, fd);
	cs->clients[cs->nclients++] = fd;
}

static void drop_client(struct consock *cs, unsigned int i)
{
	if (cs->writer == cs->clients[i])
		cs->writer = -1;
	close(cs->clients[i]);
	cs->clients[i] = cs->clients[--cs->nclients];
}

/* Input from client @i; false when it went away. */
static bool client_input(struct consock *cs, unsigned int i)
{
	uint8_t buf[1024];
	ssize_t n = read(cs->clients[i], buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	if (cs->writer < 0)
		cs->writer = cs->clients[i];
	/* A full pipe (the guest does not read its UART) drops the input, never waits. */
	if (cs->writer == cs->clients[i] && write(cs->in_wr, buf, (size_t)n) < 0)
		(void)0;
	return true;
}

/* One round: wait, then serve what is ready. False once stop was asked. */
static bool consock_round(struct consock *cs, struct pollfd *p)
{
	unsigned int i, n = cs->nclients;

	p[0] = (struct pollfd){.fd = cs->stop_fd, .events = POLLIN};
	p[1] = (struct pollfd){.fd = cs->out_eof ? -1 : cs->out_rd, .events = POLLIN};
	p[2] = (struct pollfd){.fd = cs->listen_fd, .events = POLLIN};
	for (i = 0; i < n; i++)
		p[3 + i] = (struct pollfd){.fd = cs->clients[i], .events = POLLIN};
	if (poll(p, 3 + n, -1) < 0)
		return errno == EINTR;
	if (p[0].revents)
		return false;
	if (p[1].revents && pass_output(cs) == 0)
		cs->out_eof = true;
	if (p[2].revents)
		accept_client(cs);
	for (i = n; i-- > 0;)
		if (p[3 + i].revents && !client_input(cs, i))
			drop_client(cs, i);
	return true;
}

static void *consock_main(void *arg)
{
	struct consock *cs = arg;
	struct pollfd p[3 + CONSOCK_CLIENTS];

	thread_enter("console-sock");
	while (consock_round(cs, p))
		;
	/* What the guest wrote last (a panic, a shutdown message) still reaches everyone. */
	while (!cs->out_eof && pass_output(cs) > 0)
		;
	return NULL;
}

static int consock_pipes(struct consock *cs, int *out_fd, int *in_fd)
{
	int out[2], in[2];

	if (pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(in, O_CLOEXEC | O_NONBLOCK) < 0) {
		close(out[0]);
		close(out[1]);
		return -errno;
	}
	/* Only our end: the output's writer thread may block on its end, we never do. */
	(void)fcntl(out[0], F_SETFL, O_NONBLOCK);
	cs->out_rd = out[0];
	*out_fd = out[1];
	*in_fd = in[0];
	cs->in_wr = in[1];
	return 0;
}

static void consock_free(struct consock *cs)
{
	unsigned int i;

	for (i = 0; i < cs->nclients; i++)
		close(cs->clients[i]);
	close(cs->out_rd);
	close(cs->in_wr);
	close(cs->listen_fd);
	close(cs->stop_fd);
	free(cs);
}

/* The thread takes no signal: SIGTERM and the rest are the main thread's (its signalfd). */
int consock_run(struct consock *cs)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&cs->thread, NULL, consock_main, cs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	cs->running = ret == 0;
	return ret;
}

int consock_open(const char *path, int log_fd, int *out_fd, int *in_fd, struct consock **out)
{
	struct consock *cs = calloc(1, sizeof(*cs));
	int ret;

	if (!cs)
		return -ENOMEM;
	cs->writer = -1;
	cs->log_fd = log_fd;
	cs->out_rd = cs->in_wr = cs->stop_fd = -1;
	cs->listen_fd = usock_listen(path, 8);
	ret = cs->listen_fd < 0 ? cs->listen_fd : consock_pipes(cs, out_fd, in_fd);
	if (ret == 0 && (cs->stop_fd = efd_create()) < 0)
		ret = cs->stop_fd;
	if (ret == 0) {
		*out = cs;
		return 0;
	}
	if (cs->in_wr >= 0) {
		close(*out_fd);
		close(*in_fd);
	}
	consock_free(cs);
	return ret;
}

void consock_stop(struct consock *cs)
{
	if (!cs)
		return;
	if (cs->running) {
		(void)efd_signal(cs->stop_fd);
		pthread_join(cs->thread, NULL);
	}
	consock_free(cs);
}
