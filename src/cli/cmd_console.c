/*
 * `banyan console NAME`: the terminal on a named VM's console socket
 * (vmm/console_sock.h). Raw mode while attached, restored on every exit
 * path; Ctrl-A d detaches (the VM goes on), Ctrl-A Ctrl-A sends one Ctrl-A.
 */
#include "cli/cli.h"
#include "cli/named.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#define CON_ESCAPE 0x01 /* Ctrl-A */

static struct termios saved;
static bool raw_on;

static void restore_terminal(void)
{
	if (raw_on)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	raw_on = false;
}

static void make_raw(void)
{
	struct termios raw;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) < 0)
		return;
	raw = saved;
	cfmakeraw(&raw);
	atexit(restore_terminal);
	raw_on = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
}

/* The console socket, never through a link another user controls (cli/named.h). */
static int connect_console(const char *name)
{
	char path[NAMED_PATH];

	if (named_path(name, NAMED_CONSOLE, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return named_connect(path);
}

static int send_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t k;

	while (n) {
		k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Keys to the VM, the escape taken out. Returns 1 on Ctrl-A d, -1 when the VM is gone. */
static int keys(int sock, const unsigned char *in, size_t n, bool *escape)
{
	unsigned char out[512];
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (*escape) {
			*escape = false;
			if (in[i] == 'd' || in[i] == 'D')
				return send_all(sock, out, k) < 0 ? -1 : 1;
			if (in[i] == CON_ESCAPE)
				out[k++] = CON_ESCAPE;
		} else if (in[i] == CON_ESCAPE) {
			*escape = true;
		} else {
			out[k++] = in[i];
		}
	}
	return send_all(sock, out, k) < 0 ? -1 : 0;
}

/* Output to the terminal; false when the VM's end closed the socket. */
static bool output(int sock)
{
	char buf[4096];
	ssize_t n = read(sock, buf, sizeof(buf));

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	return write(STDOUT_FILENO, buf, (size_t)n) == n;
}

/* Until detach (0), the VM's end (1) or the end of our input (0). */
static int attach(int sock)
{
	struct pollfd p[2] = {{.fd = sock, .events = POLLIN},
			      {.fd = STDIN_FILENO, .events = POLLIN}};
	unsigned char buf[512];
	bool escape = false;
	ssize_t n;
	int r;

	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents && !output(sock))
			return 1;
		if (!p[1].revents)
			continue;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return 0;
		r = n > 0 ? keys(sock, buf, (size_t)n, &escape) : 0;
		if (r != 0)
			return r > 0 ? 0 : 1;
	}
}

int cmd_console(int argc, char **argv)
{
	int sock, ended;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: banyan console NAME\n"
		       "  the terminal on the named VM's serial console; Ctrl-A d detaches\n"
		       "  (the VM goes on), Ctrl-A Ctrl-A sends Ctrl-A\n");
		return 0;
	}
	if (argc != 2 || named_check(argv[1]) < 0) {
		fprintf(stderr, "banyan console: %s (see banyan console --help)\n",
			argc != 2 ? "one VM name is expected" : "bad VM name");
		return EXIT_USAGE;
	}
	sock = connect_console(argv[1]);
	if (sock == -ELOOP) {
		fprintf(stderr, "banyan console: %s: %s\n", argv[1], named_strerror(sock));
		return EXIT_HOST_ERROR;
	}
	if (sock < 0) {
		fprintf(stderr, "banyan console: %s: no running VM of this name (%s)\n", argv[1],
			strerror(-sock));
		return EXIT_HOST_ERROR;
	}
	fprintf(stderr, "[console of %s: Ctrl-A d detaches]\r\n", argv[1]);
	make_raw();
	ended = attach(sock);
	restore_terminal();
	close(sock);
	fprintf(stderr, "\r\n[%s]\r\n", ended ? "the VM's console closed" : "detached");
	return 0;
}
