/*
 * The console's output queues (vmm/console.h, console_out_*): apart from
 * the terminal code in console.c because devices use them without a
 * console or a VM (the serial port's unit tests, a VM restarted at reboot).
 */
#include "vmm/console.h"

#include "util/writer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/*
 * The output queues, one per fd. Like the terminal they belong to the
 * process, not to one VM: a reboot's new VM must write behind the old one.
 */
struct console_out {
	int fd;
	unsigned int refs;
	struct writer *w;
	struct console_out *next;
};

static pthread_mutex_t outs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct console_out *outs; /* protected by outs_lock */
static size_t out_bytes = CONSOLE_OUT_BYTES;

void console_set_out_bytes(size_t bytes)
{
	if (bytes >= CONSOLE_OUT_MIN && bytes <= CONSOLE_OUT_MAX)
		out_bytes = bytes;
}

struct writer *console_out_get(int fd)
{
	struct console_out *o;
	struct writer *w = NULL;

	pthread_mutex_lock(&outs_lock);
	for (o = outs; o && o->fd != fd; o = o->next)
		;
	if (!o && (o = calloc(1, sizeof(*o))) != NULL) {
		if (writer_create(fd, out_bytes, "console-out", &o->w) == 0) {
			o->fd = fd;
			o->next = outs;
			outs = o;
		} else {
			free(o);
			o = NULL;
		}
	}
	if (o) {
		o->refs++;
		w = o->w;
	}
	pthread_mutex_unlock(&outs_lock);
	return w;
}

void console_out_put(struct writer *w)
{
	struct console_out **p, *o = NULL;
	bool last = false;

	if (!w)
		return;
	pthread_mutex_lock(&outs_lock);
	for (p = &outs; *p; p = &(*p)->next)
		if ((*p)->w == w) {
			o = *p;
			last = --o->refs == 0;
			if (last)
				*p = o->next;
			break;
		}
	pthread_mutex_unlock(&outs_lock);
	if (last) {
		writer_destroy(w, CONSOLE_FLUSH_IDLE_MS, CONSOLE_FLUSH_MAX_MS);
		free(o);
	}
}
