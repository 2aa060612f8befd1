/*
 * Progress bars for the CLI's long operations (snapshot create, clone
 * fan-out, migration): one line on a terminal, redrawn in place,
 *
 *   snapshot [###########.........]  55%  1.1/2.0 GiB  212.4 MiB/s  ETA 0:04
 *   clones   [####................]  20%  2/10  8.1/s  ETA 0:01
 *
 * and nothing at all when the stream it would draw on is not a terminal,
 * so pipes, logs and scripts read only the commands' own output.
 */
#ifndef BANYAN_CLI_PROGRESS_H
#define BANYAN_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROGRESS_BAR_MAX 30 /* cells of the bar on a wide terminal */
#define PROGRESS_BAR_MIN 10 /* fewer: the bar is left out */

/* What one line shows: progress_render's input. */
struct progress_view {
	const char *label; /* the operation ("snapshot", a migration's phase, ...) */
	uint64_t done;
	uint64_t total;	     /* 0: unknown (no bar, percent or ETA) */
	bool bytes;	     /* done/total are bytes (sizes, MiB/s), else items (n/N, per second) */
	uint64_t elapsed_ns; /* since the operation began: the rate and the ETA */
	const char *extra;   /* appended as it is (NULL: nothing) */
	unsigned int cols;   /* the terminal's width: the line is at most cols - 1 long */
};

/*
 * progress_render - the line for @v (no "\r", no newline) into @buf of
 * @size bytes, NUL-terminated. The bar takes what the text leaves of
 * @v->cols, up to PROGRESS_BAR_MAX cells, and is dropped below
 * PROGRESS_BAR_MIN; the extra text goes before the bar does. Pure: no I/O.
 * Returns the line's length.
 */
size_t progress_render(char *buf, size_t size, const struct progress_view *v);

/* A bar being drawn on a stream. */
struct progress {
	FILE *f;
	bool on; /* f is a terminal: draw; otherwise every call does nothing */
	bool bytes;
	char label[32]; /* a copy: a label may live in a reply freed after the update */
	uint64_t total;
	uint64_t t0_ns, last_ns; /* started; last drawn (redraws are 10 a second at most) */
	uint64_t last_done;	 /* what the last line showed */
	bool drawn;		 /* a line is on the terminal: progress_end ends it */
};

/*
 * progress_start - a bar for an operation of @total (0: unknown) bytes
 * (@bytes) or items on @f, drawn only when @f is a terminal. Draws nothing
 * yet.
 */
void progress_start(struct progress *p, FILE *f, const char *label, uint64_t total, bool bytes);

/*
 * progress_update - @done so far (and a new @label or @total when not
 * NULL / 0), redrawn when 100 ms passed since the last line or @done
 * reached the total (once). @extra as in struct progress_view.
 */
void progress_update(struct progress *p, const char *label, uint64_t done, uint64_t total,
		     const char *extra);

/* progress_end - end the line drawn (a newline), so what follows starts on its own. */
void progress_end(struct progress *p);

#endif
