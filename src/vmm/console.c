/* Terminal <-> guest serial console, with the Ctrl-A escape. */
#include "vmm/console.h"

#include "util/log.h"
#include "util/writer.h"
#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

/*
 * The terminal is a process-wide resource, so its saved mode is too: the
 * atexit handler must find it whatever path ends the process.
 */
static struct termios saved_termios;
static int saved_fd = -1;

void console_restore_terminal(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSANOW, &saved_termios);
		saved_fd = -1;
		log_set_raw_terminal(false);
	}
}

static int console_make_raw(int fd)
{
	struct termios raw;

	if (tcgetattr(fd, &saved_termios) < 0)
		return -errno;
	raw = saved_termios;
	cfmakeraw(&raw);
	saved_fd = fd;
	atexit(console_restore_terminal);
	if (tcsetattr(fd, TCSANOW, &raw) < 0)
		return -errno;
	log_set_raw_terminal(true);
	return 0;
}

static void console_queue(struct console *con, uint8_t c)
{
	if (con->npending < sizeof(con->pending))
		con->pending[con->npending++] = c;
}

/* Shown in the console's own stream: a stopped terminal must not block the event loop. */
static void console_help(struct console *con)
{
	static const char help[] = "\r\nCtrl-A x  quit (the VM stops)\r\n"
				   "Ctrl-A Ctrl-A  send Ctrl-A\r\nCtrl-A h  this help\r\n";

	if (con->out)
		writer_put(con->out, help, sizeof(help) - 1);
}

static void console_escape(struct console *con, uint8_t c)
{
	con->escape = false;
	switch (c) {
	case 'x':
	case 'X':
		if (con->vm)
			vm_request_exit(con->vm, VM_EXIT_USER, "quit from the console");
		break;
	case CONSOLE_ESCAPE:
		console_queue(con, c);
		break;
	case 'h':
	case '?':
		console_help(con);
		break;
	default:
		break;
	}
}

static void console_stop_watching(struct console *con)
{
	if (con->watching)
		event_loop_del(con->loop, &con->handler);
	con->watching = false;
}

void console_flush(struct console *con)
{
	size_t n;

	if (con->npending && con->vm && con->vm->console && con->vm->console->ops->input) {
		n = con->vm->console->ops->input(con->vm->console, con->pending, con->npending);
		memmove(con->pending, con->pending + n, con->npending - n);
		con->npending -= n;
	}
	/* Input paused while the buffer was full resumes once there is room. */
	if (!con->watching && !con->eof && con->npending < sizeof(con->pending))
		con->watching = event_loop_add(con->loop, &con->handler, EPOLLIN) == 0;
}

static void console_on_input(struct event_handler *h, uint32_t events)
{
	struct console *con = container_of(h, struct console, handler);
	uint8_t buf[256];
	size_t room;
	ssize_t n, i;

	(void)events;
	room = sizeof(con->pending) - con->npending;
	if (room == 0) {
		/* Back-pressure: stop reading until the guest drains the UART. */
		console_stop_watching(con);
		return;
	}
	n = read(h->fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		con->eof = true; /* the guest keeps running without input */
		console_stop_watching(con);
		return;
	}
	for (i = 0; i < n; i++) {
		if (con->escape)
			console_escape(con, buf[i]);
		else if (con->is_tty && buf[i] == CONSOLE_ESCAPE)
			con->escape = true;
		else
			console_queue(con, buf[i]);
	}
	console_flush(con);
}

int console_open(struct console *con, struct event_loop *loop, int in_fd)
{
	int ret;

	memset(con, 0, sizeof(*con));
	con->loop = loop;
	con->handler.fd = in_fd;
	con->handler.fn = console_on_input;
	con->is_tty = isatty(in_fd);
	if (con->is_tty) {
		ret = console_make_raw(in_fd);
		if (ret < 0)
			return ret;
	}
	ret = event_loop_add(loop, &con->handler, EPOLLIN);
	/* A regular file or /dev/null cannot be polled: treat it as no input. */
	con->watching = ret == 0;
	con->eof = ret == -EPERM;
	return ret == -EPERM ? 0 : ret;
}

void console_attach(struct console *con, struct vm *vm)
{
	con->vm = vm;
	if (vm && !con->out)
		con->out = console_out_get(vm->cfg.console_out_fd);
}

int console_poll_ms(const struct console *con)
{
	return con->npending ? 5 : -1;
}

void console_close(struct console *con)
{
	console_stop_watching(con);
	console_restore_terminal();
	console_out_put(con->out);
	con->out = NULL;
	log_flush();
}
