/*
 * Where a migration stream flows (docs/migration.md): a URL, "tcp:HOST:PORT"
 * or "unix:PATH", and a connection with read and write operations. The
 * plain one is a socket; an encrypted one (TLS) is another set of
 * operations over the same socket, so nothing above this file changes.
 */
#ifndef BANYAN_MIGRATION_TRANSPORT_H
#define BANYAN_MIGRATION_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MIG_URL_MAX 256
#define MIG_ERR_LEN 512

enum mig_url_kind { MIG_URL_TCP, MIG_URL_UNIX };

struct mig_url {
	enum mig_url_kind kind;
	char host[MIG_URL_MAX]; /* tcp: a name or address ([v6] without brackets) */
	char port[16];		/* tcp: 1..65535 */
	char path[108];		/* unix: sun_path */
};

/*
 * mig_url_parse - "tcp:HOST:PORT" (HOST may be "[v6addr]") or "unix:PATH".
 * 0 or -EINVAL with the reason in @err (MIG_ERR_LEN bytes).
 */
int mig_url_parse(const char *s, struct mig_url *u, char *err) __attribute__((warn_unused_result));

struct mig_conn;

struct mig_conn_ops {
	/* Up to @len bytes; >0 bytes moved, 0 at end of stream (read), -errno. */
	ssize_t (*read)(struct mig_conn *c, void *buf, size_t len);
	ssize_t (*write)(struct mig_conn *c, const void *buf, size_t len);
	/* Unblock every read and write now, from any thread (cancel). */
	void (*shutdown)(struct mig_conn *c);
	void (*close)(struct mig_conn *c);
};

struct mig_conn {
	const struct mig_conn_ops *ops;
	int fd;
	void *priv;	    /* the operations' own (a TLS session, a fuzz input) */
	uint64_t bytes_out; /* written so far */
	uint64_t bytes_in;  /* read so far */
};

/*
 * mig_conn_fd - a connection over socket @fd (owned from now on). Reads
 * and writes wait at most @timeout_ms each (0: forever). 0 or -errno.
 */
int mig_conn_fd(struct mig_conn *c, int fd, unsigned int timeout_ms)
    __attribute__((warn_unused_result));

/* mig_connect - connect to @u (the source's side). 0 or -errno with @err. */
int mig_connect(const struct mig_url *u, unsigned int timeout_ms, struct mig_conn *c, char *err)
    __attribute__((warn_unused_result));

/*
 * mig_listen - a listening socket for @u (the destination's side); a unix
 * path follows util/usock's rule (a live socket there is refused). The fd
 * (non-blocking, close-on-exec) or -errno with @err.
 */
int mig_listen(const struct mig_url *u, char *err) __attribute__((warn_unused_result));

/*
 * mig_accept - wait for one connection on @lfd, or until @cancel_fd (-1:
 * none) is readable (-ECANCELED). 0 or -errno with @err.
 */
int mig_accept(int lfd, int cancel_fd, unsigned int timeout_ms, struct mig_conn *c, char *err)
    __attribute__((warn_unused_result));

/* mig_read_full / mig_write_full - all @len bytes, or -errno (-EPIPE: the peer closed). */
int mig_read_full(struct mig_conn *c, void *buf, size_t len) __attribute__((warn_unused_result));
int mig_write_full(struct mig_conn *c, const void *buf, size_t len)
    __attribute__((warn_unused_result));

/* mig_conn_close - close @c (idempotent). */
void mig_conn_close(struct mig_conn *c);

#endif
