/* Progress bars on a terminal (cli/progress.h). */
#include "cli/progress.h"

#include "util/clock.h"

#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define REDRAW_NS    100000000ull /* 10 lines a second at most */
#define DEFAULT_COLS 80
#define MIB	     (1024.0 * 1024.0)

/* "1.1/2.0 GiB", "12/512 KiB", or "3/10" for items: one unit, the total's. */
static void amounts(char *out, size_t size, const struct progress_view *v)
{
	uint64_t big = v->total > v->done ? v->total : v->done;
	double div = big >= (1ull << 30) ? MIB * 1024 : big >= (1ull << 20) ? MIB : 1024.0;
	const char *unit = big >= (1ull << 30) ? "GiB" : big >= (1ull << 20) ? "MiB" : "KiB";

	if (!v->bytes && v->total)
		snprintf(out, size, "%llu/%llu", (unsigned long long)v->done,
			 (unsigned long long)v->total);
	else if (!v->bytes)
		snprintf(out, size, "%llu", (unsigned long long)v->done);
	else if (v->total)
		snprintf(out, size, "%.1f/%.1f %s", (double)v->done / div, (double)v->total / div,
			 unit);
	else
		snprintf(out, size, "%.1f %s", (double)v->done / div, unit);
}

/* The rate and the time left; both empty until something was done. */
static void rate_eta(char *rate, char *eta, size_t size, const struct progress_view *v)
{
	double secs = (double)v->elapsed_ns / 1e9, per_s;
	unsigned long long left;

	rate[0] = eta[0] = '\0';
	if (v->done == 0 || v->elapsed_ns == 0)
		return;
	per_s = (double)v->done / secs;
	if (v->bytes)
		snprintf(rate, size, "%.1f MiB/s", per_s / MIB);
	else
		snprintf(rate, size, "%.1f/s", per_s);
	if (!v->total || v->done >= v->total)
		return;
	left = (unsigned long long)((double)(v->total - v->done) / per_s + 0.5);
	if (left >= 3600)
		snprintf(eta, size, "ETA %lluh%02llum", left / 3600, left / 60 % 60);
	else
		snprintf(eta, size, "ETA %llu:%02llu", left / 60, left % 60);
}

/* The text after the bar: percent, amounts, rate, ETA, and @extra when given. */
static void tail_text(char *out, size_t size, const struct progress_view *v, const char *extra)
{
	char pct[8] = "", amt[48], rate[32], eta[32];
	uint64_t p;

	if (v->total) {
		p = v->done >= v->total ? 100 : v->done * 100 / v->total;
		snprintf(pct, sizeof(pct), "%3u%%", (unsigned int)p);
	}
	amounts(amt, sizeof(amt), v);
	rate_eta(rate, eta, sizeof(rate), v);
	snprintf(out, size, "%s%s%s%s%s%s%s%s%s", pct, pct[0] ? "  " : "", amt, rate[0] ? "  " : "",
		 rate, eta[0] ? "  " : "", eta, extra ? "  " : "", extra ? extra : "");
}

size_t progress_render(char *buf, size_t size, const struct progress_view *v)
{
	char tail[512];
	size_t avail = (v->cols ? v->cols : DEFAULT_COLS) - 1, fixed;
	long cells;
	int fill;

	tail_text(tail, sizeof(tail), v, v->extra);
	fixed = strlen(v->label) + 4; /* "LABEL [" "] " */
	if (v->extra && fixed + PROGRESS_BAR_MIN + strlen(tail) > avail)
		tail_text(tail, sizeof(tail), v, NULL); /* the extra goes first */
	cells = (long)avail - (long)(fixed + strlen(tail));
	cells = cells > PROGRESS_BAR_MAX ? PROGRESS_BAR_MAX : cells;
	if (!v->total || cells < PROGRESS_BAR_MIN) {
		snprintf(buf, size, "%s  %s", v->label, tail);
	} else {
		fill =
		    (int)((v->done >= v->total ? v->total : v->done) * (uint64_t)cells / v->total);
		snprintf(buf, size, "%s [%.*s%*s] %s", v->label, fill,
			 "##############################", (int)cells - fill, "", tail);
	}
	if (strlen(buf) > avail)
		buf[avail] = '\0';
	return strlen(buf);
}

void progress_start(struct progress *p, FILE *f, const char *label, uint64_t total, bool bytes)
{
	*p = (struct progress){
	    .f = f, .on = isatty(fileno(f)), .bytes = bytes, .total = total, .t0_ns = now_ns()};
	snprintf(p->label, sizeof(p->label), "%s", label);
}

static unsigned int term_cols(FILE *f)
{
	struct winsize ws;

	if (ioctl(fileno(f), TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
		return DEFAULT_COLS;
	return ws.ws_col;
}

void progress_update(struct progress *p, const char *label, uint64_t done, uint64_t total,
		     const char *extra)
{
	uint64_t now = now_ns();
	struct progress_view v;
	char line[1024];

	if (!p->on)
		return;
	if (label)
		snprintf(p->label, sizeof(p->label), "%s", label);
	p->total = total ? total : p->total;
	if (p->drawn && now - p->last_ns < REDRAW_NS &&
	    !(p->total && done >= p->total && p->last_done < p->total))
		return;
	v = (struct progress_view){.label = p->label,
				   .done = done,
				   .total = p->total,
				   .bytes = p->bytes,
				   .elapsed_ns = now - p->t0_ns,
				   .extra = extra,
				   .cols = term_cols(p->f)};
	progress_render(line, sizeof(line), &v);
	/*
	 * \033[K: a shorter line than the last leaves nothing of it behind.
	 * The cursor goes back to the line's start, so that a log line
	 * another process writes meanwhile (a clone's) replaces the bar
	 * rather than running on after it; the next line is drawn below.
	 */
	fprintf(p->f, "\r%s\033[K\r", line);
	fflush(p->f);
	p->drawn = true;
	p->last_ns = now;
	p->last_done = done;
}

void progress_end(struct progress *p)
{
	if (!p->drawn)
		return;
	fputc('\n', p->f);
	fflush(p->f);
	p->drawn = false;
}
