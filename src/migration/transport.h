/*
 * Where a migration stream flows (docs/migration.md): a URL, "tcp:HOST:PORT"
 * or "unix:PATH", and a connection with read and write operations. The
 * plain one is a socket; an encrypted one (TLS) is another set of
 * operations over the same socket, so nothing above this file changes.
 */
#ifndef BANYAN_MIGRATION_TRANSPORT_H
#define BANYAN_MIGRATION_TRANSPORT_H

#include <stdbool.h>
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
	/*
	 * A unix: connection carries descriptors (SCM_RIGHTS): tx_fd (-1:
	 * none) rides on the next write and is then set to -1 (the caller
	 * keeps it open); rx_fd is the one that came with the bytes read
	 * (owned by the connection until taken; one at most, any further
	 * one is closed at once). Only a unix: connection looks at them.
	 */
	int tx_fd;
	int rx_fd;
	/* Why the last read or write failed, when the errno says too little (TLS). */
	char why[160];
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

/* mig_conn_close - close @c (idempotent), and any descriptor it received. */
void mig_conn_close(struct mig_conn *c);

/*
 * mig_conn_take_fd - the descriptor that arrived with the bytes read so
 * far (now the caller's), or -ENOENT.
 */
int mig_conn_take_fd(struct mig_conn *c) __attribute__((warn_unused_result));

/* TLS over tcp: (tls.c, docs/migration.md "TLS"): certificates by path. */
#define MIG_TLS_PATH_MAX 256

struct mig_tls_paths {
	char cert[MIG_TLS_PATH_MAX]; /* this side's certificate (PEM); empty: no TLS */
	char key[MIG_TLS_PATH_MAX];  /* ...its private key (PEM) */
	char ca[MIG_TLS_PATH_MAX];   /* the CA the peer's certificate must chain to (PEM) */
};

struct mig_tls;

/*
 * mig_tls_lib_load - load GnuTLS for this process's TLS migrations
 * (tls_lib.h). Call it before the sandbox in any process that may migrate
 * over TLS; later calls return at once. 0, or -ENOENT when the library
 * cannot be loaded (mig_tls_load then says why).
 */
int mig_tls_lib_load(void);

/* mig_tls_wanted - any of @p's paths is set. */
bool mig_tls_wanted(const struct mig_tls_paths *p);

/*
 * mig_tls_load - read @p's certificate, key and CA (all three required)
 * into credentials for either side. Reads the files now, so a sandboxed
 * caller loads them before its filter forbids opening files. 0 or
 * -errno with @err naming the file and the reason.
 */
int mig_tls_load(const struct mig_tls_paths *p, struct mig_tls **out, char *err)
    __attribute__((warn_unused_result));

/* mig_tls_free - release credentials (NULL is fine). */
void mig_tls_free(struct mig_tls *t);

/*
 * mig_tls_client / mig_tls_server - a TLS 1.3 handshake over @c (a plain
 * tcp: connection from mig_connect or mig_accept), after which @c's
 * reads and writes are encrypted. Both sides present their certificate
 * and verify the peer's against the CA (expiry included); the client
 * also checks that the server's certificate names @host. Never falls
 * back to plaintext. 0 or -errno with the reason in @err; @c is still
 * to be closed either way.
 */
int mig_tls_client(struct mig_conn *c, struct mig_tls *t, const char *host, char *err)
    __attribute__((warn_unused_result));
int mig_tls_server(struct mig_conn *c, struct mig_tls *t, char *err)
    __attribute__((warn_unused_result));

#endif
