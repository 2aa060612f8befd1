/*
 * The serial console on a Unix socket (named VMs, docs/operations.md): a
 * thread of its own serves it, so that no client can hold up a vCPU or the
 * event loop. Any number of clients may read (up to CONSOCK_CLIENTS); each
 * one first receives the last CONSOCK_RING bytes of output (the
 * scrollback), then everything the guest writes. One client writes at a
 * time: the first to send bytes while nobody writes becomes the writer
 * until it disconnects; the others' input is dropped. A client that does
 * not keep up loses output (it is never waited for). The output is also
 * appended to a log file.
 */
#ifndef BANYAN_VMM_CONSOLE_SOCK_H
#define BANYAN_VMM_CONSOLE_SOCK_H

#define CONSOCK_RING	(64 * 1024)
#define CONSOCK_CLIENTS 16

struct consock;

/*
 * consock_open - listen on @path (util/usock.h's rules) and make the
 * pipes; the thread starts with consock_run. The guest's console output is to be written to
 * *@out_fd (a pipe; the caller owns this end), its input read from *@in_fd (a non-blocking pipe;
 * the caller owns it too). @log_fd (or -1) receives a copy of the output; it is not closed. 0 or
 * -errno.
 */
int consock_open(const char *path, int log_fd, int *out_fd, int *in_fd, struct consock **out)
    __attribute__((warn_unused_result));

/*
 * consock_run - start the thread that serves the socket: after the
 * sandbox is prepared (security/seccomp.h), so that it runs under its own
 * filter. 0 or -errno.
 */
int consock_run(struct consock *cs) __attribute__((warn_unused_result));

/*
 * consock_stop - pass on the output still in the pipe (close *out_fd
 * first, or only what is there now is passed), stop the thread, close
 * the clients and the listening socket, and free @cs (started or not).
 * Does not remove @path. NULL is a no-op.
 */
void consock_stop(struct consock *cs);

#endif
