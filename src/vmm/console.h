/*
 * The serial console on the terminal: stdin feeds the guest's COM1 (raw
 * mode when stdin is a terminal, restored on every exit path), and an
 * escape sequence quits: Ctrl-A x. Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A h
 * prints the list.
 *
 * The guest's output goes through a bounded queue per output fd, written
 * by a thread of its own (util/writer.h): a reader that stops reading (a
 * full pipe, a stopped terminal) never blocks a vCPU. Past
 * CONSOLE_OUT_BYTES waiting, output is dropped and counted.
 */
#ifndef BANYAN_VMM_CONSOLE_H
#define BANYAN_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/event_loop.h"

struct vm;
struct writer;

/* Console output waiting for a slow reader before the rest is dropped (default, bounds). */
#define CONSOLE_OUT_BYTES (1024 * 1024)
#define CONSOLE_OUT_MIN	  (4 * 1024)
#define CONSOLE_OUT_MAX	  (64 * 1024 * 1024)
/* At exit, how long a stalled reader may hold up the last flush, and the most in all. */
#define CONSOLE_FLUSH_IDLE_MS 1000
#define CONSOLE_FLUSH_MAX_MS  3000

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

struct console {
	struct event_handler handler;
	struct event_loop *loop;
	struct vm *vm;
	bool is_tty;	       /* escapes and raw mode only on a terminal */
	bool watching;	       /* stdin is in the epoll set */
	bool eof;	       /* stdin ended (or cannot be polled) */
	bool escape;	       /* the previous byte was the escape */
	uint8_t pending[4096]; /* typed but not yet accepted by the UART */
	size_t npending;
	struct writer *out; /* the output queue, held across VM restarts */
};

/*
 * console_out_get - the output queue for @fd, one per fd, shared by every
 * device and VM writing there (so a VM restarted at reboot continues the
 * same queue, in order). Counted by reference. NULL if it cannot be made.
 */
struct writer *console_out_get(int fd);

/*
 * console_set_out_bytes - the size of output queues made from now on
 * (--console-queue); CONSOLE_OUT_MIN..CONSOLE_OUT_MAX, else ignored.
 */
void console_set_out_bytes(size_t bytes);

/*
 * console_out_put - drop a reference. The last one flushes (bounded by
 * CONSOLE_FLUSH_*: never waits on a reader that stopped) and frees.
 */
void console_out_put(struct writer *w);

/*
 * console_open - put @in_fd (stdin) in raw mode when it is a terminal and
 * watch it on @loop. 0 or -errno.
 */
int console_open(struct console *con, struct event_loop *loop, int in_fd)
    __attribute__((warn_unused_result));

/*
 * console_attach - feed input to @vm's console device from now on (NULL:
 * drop), and hold its output queue until console_close.
 */
void console_attach(struct console *con, struct vm *vm);

/*
 * console_poll_ms - how long the event loop may sleep: a few ms while typed
 * input waits for room in the UART, -1 otherwise. console_flush retries it.
 */
int console_poll_ms(const struct console *con);
void console_flush(struct console *con);

/*
 * console_close - stop watching, restore the terminal, and flush the output
 * queue and the log (each bounded in time).
 */
void console_close(struct console *con);

/* console_restore_terminal - restore the saved terminal mode (idempotent, atexit-safe). */
void console_restore_terminal(void);

#endif
