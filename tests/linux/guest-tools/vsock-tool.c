/*
 * vsock-tool: the guest side of the vsock tests and benchmark (busybox has
 * no AF_VSOCK). Built static, it travels to the guest on a small ext4 disk.
 *
 *   vsock-tool listen PORT echo|sink|check [COUNT]
 *       accept COUNT connections (default 1), each in its own process:
 *       echo sends every byte back until the peer shuts down, then closes;
 *       sink copies what arrives to stdout until EOF, then prints
 *       "eof BYTES" on stderr; check reads the test pattern (below) until
 *       EOF or an error (a reset) and prints "BYTES_ok" or
 *       "BYTES_bad_at_OFFSET" on stdout.
 *   vsock-tool tcp ADDR PORT
 *       connect to IPv4 ADDR:PORT, retrying every 0.5 s until it works,
 *       then check the test pattern as listen's check does.
 *   vsock-tool connect CID PORT pipe
 *       stdin to the socket (then shutdown(SHUT_WR)), the socket to stdout
 *       until the peer closes. Exit 0, or 1 with the error on stderr.
 *   vsock-tool connect CID PORT zeros BYTES
 *       send BYTES zero bytes, shut down, wait for the close, print
 *       "sent BYTES in SECS s" on stderr (throughput benchmark).
 *   vsock-tool cid
 *       print the guest's own CID, as its vsock driver knows it now.
 *
 * The test pattern (tests/linux/vsock_host.py sends it): 8-byte
 * little-endian counters, 0, 1, 2...: a byte lost, duplicated or changed
 * anywhere in a stream shows at its offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)

static char buf[BUF_SIZE];

static int die(const char *what)
{
	fprintf(stderr, "vsock-tool: %s: %s\n", what, strerror(errno));
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static unsigned char pattern_byte(unsigned long long i)
{
	return (unsigned char)((i / 8) >> (8 * (i % 8)));
}

/* Read @fd to its end (EOF, or an error such as a reset) checking the pattern. */
static int check_stream(int fd)
{
	unsigned long long total = 0, bad = ~0ULL;
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR)) {
		for (ssize_t k = 0; k < r && bad == ~0ULL; k++)
			if ((unsigned char)buf[k] != pattern_byte(total + (unsigned long long)k))
				bad = total + (unsigned long long)k;
		total += r > 0 ? (unsigned long long)r : 0;
	}
	if (bad == ~0ULL)
		printf("%llu_ok\n", total);
	else
		printf("%llu_bad_at_%llu\n", total, bad);
	fflush(stdout);
	close(fd);
	return bad != ~0ULL;
}

static int do_tcp(const char *addr, unsigned int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	int fd;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return die("address");
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return die("socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return check_stream(fd);
		close(fd);
		usleep(500000);
	}
}

static int serve(int fd, int echo)
{
	unsigned long long total = 0;
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		total += (unsigned long long)r;
		if (write_all(echo ? fd : STDOUT_FILENO, buf, (size_t)r) < 0)
			return die("write");
	}
	if (r < 0)
		return die("read");
	if (!echo)
		fprintf(stderr, "eof %llu\n", total);
	close(fd);
	return 0;
}

static int do_listen(unsigned int port, const char *mode, int count)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int lfd = socket(AF_VSOCK, SOCK_STREAM, 0), status, failed = 0;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0)
		return die("listen");
	for (int i = 0; i < count; i++) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			return die("accept");
		if (count == 1)
			return strcmp(mode, "check") == 0 ? check_stream(fd)
							  : serve(fd, strcmp(mode, "echo") == 0);
		if (fork() == 0)
			_exit(strcmp(mode, "check") == 0 ? check_stream(fd)
							 : serve(fd, strcmp(mode, "echo") == 0));
		close(fd);
	}
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status);
	return failed;
}

static int do_connect(unsigned int cid, unsigned int port)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		die("connect");
		return -1;
	}
	return fd;
}

static int do_pipe(int fd)
{
	struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	ssize_t r;

	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return die("poll");
		if (p[0].revents) {
			r = read(STDIN_FILENO, buf, sizeof(buf));
			if (r > 0 && write_all(fd, buf, (size_t)r) < 0)
				return die("send");
			if (r <= 0) {
				shutdown(fd, SHUT_WR);
				p[0].fd = -1;
			}
		}
		if (p[1].revents) {
			r = read(fd, buf, sizeof(buf));
			if (r < 0)
				return die("recv");
			if (r == 0)
				return 0;
			if (write_all(STDOUT_FILENO, buf, (size_t)r) < 0)
				return die("write");
		}
	}
}

static int do_zeros(int fd, unsigned long long bytes)
{
	struct timespec a, b;
	unsigned long long left = bytes;

	memset(buf, 0, sizeof(buf));
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (left) {
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);

		if (write_all(fd, buf, n) < 0)
			return die("send");
		left -= n;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	clock_gettime(CLOCK_MONOTONIC, &b);
	fprintf(stderr, "sent %llu in %.3f s\n", bytes,
		(double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}

static int do_cid(void)
{
	unsigned int cid = 0;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0) {
		perror("vsock-tool: /dev/vsock");
		return 1;
	}
	printf("%u\n", cid);
	return 0;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc == 2 && strcmp(argv[1], "cid") == 0)
		return do_cid();
	if (argc >= 4 && strcmp(argv[1], "listen") == 0)
		return do_listen((unsigned int)strtoul(argv[2], NULL, 10), argv[3],
				 argc > 4 ? atoi(argv[4]) : 1);
	if (argc == 4 && strcmp(argv[1], "tcp") == 0)
		return do_tcp(argv[2], (unsigned int)strtoul(argv[3], NULL, 10));
	if (argc >= 5 && strcmp(argv[1], "connect") == 0) {
		fd = do_connect((unsigned int)strtoul(argv[2], NULL, 10),
				(unsigned int)strtoul(argv[3], NULL, 10));
		if (fd < 0)
			return 1;
		if (strcmp(argv[4], "zeros") == 0 && argc >= 6)
			return do_zeros(fd, strtoull(argv[5], NULL, 10));
		return do_pipe(fd);
	}
	fprintf(stderr, "usage: vsock-tool listen PORT echo|sink|check [COUNT]\n"
			"       vsock-tool tcp ADDR PORT\n"
			"       vsock-tool connect CID PORT pipe|zeros BYTES\n"
			"       vsock-tool cid\n");
	return 2;
}
