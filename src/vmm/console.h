/*
 * The serial console on the terminal: stdin feeds the guest's COM1 (raw
 * mode when stdin is a terminal, restored on every exit path), and an
 * escape sequence quits: Ctrl-A x. Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A h
 * prints the list.
 */
#ifndef BANYAN_VMM_CONSOLE_H
#define BANYAN_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/event_loop.h"

struct vm;

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
};

/*
 * console_open - put @in_fd (stdin) in raw mode when it is a terminal and
 * watch it on @loop. 0 or -errno.
 */
int console_open(struct console *con, struct event_loop *loop, int in_fd)
    __attribute__((warn_unused_result));

/* console_attach - feed input to @vm's console device from now on (NULL: drop). */
void console_attach(struct console *con, struct vm *vm);

/*
 * console_poll_ms - how long the event loop may sleep: a few ms while typed
 * input waits for room in the UART, -1 otherwise. console_flush retries it.
 */
int console_poll_ms(const struct console *con);
void console_flush(struct console *con);

/* console_close - stop watching and restore the terminal. */
void console_close(struct console *con);

/* console_restore_terminal - restore the saved terminal mode (idempotent, atexit-safe). */
void console_restore_terminal(void);

#endif
