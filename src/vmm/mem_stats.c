/* The VMM process's memory as the kernel accounts it, guest RAM apart. */
#include "vmm/mem_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_LEN 512

/* Where a walk over smaps is: inside guest RAM's mapping or not. */
struct smaps_walk {
	uintptr_t guest_start, guest_end;
	bool in_guest; /* the current mapping lies inside guest RAM */
	struct mem_stats *st;
	uint64_t guest_rss; /* guest RAM's Rss, hugetlb excluded */
};

/* "Key:   123 kB" -> bytes when the line starts with @key, else false. */
static bool field_kb(const char *line, const char *key, uint64_t *bytes)
{
	size_t n = strlen(key);

	if (strncmp(line, key, n) != 0 || line[n] != ':')
		return false;
	*bytes = strtoull(line + n + 1, NULL, 10) << 10;
	return true;
}

/* A mapping's header "start-end perms offset dev inode path": does it lie in guest RAM? */
static bool header_in_guest(const struct smaps_walk *w, const char *line)
{
	char *end;
	uintptr_t start = (uintptr_t)strtoull(line, &end, 16), stop;

	if (*end != '-')
		return false;
	stop = (uintptr_t)strtoull(end + 1, NULL, 16);
	return w->guest_end > w->guest_start && start >= w->guest_start && stop <= w->guest_end;
}

/* One line of smaps (per mapping) or smaps_rollup (the whole process). */
static void smaps_line(struct smaps_walk *w, const char *line)
{
	uint64_t v;

	if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
		w->in_guest = header_in_guest(w, line);
		return;
	}
	if (!w->in_guest)
		return;
	if (field_kb(line, "Rss", &v))
		w->guest_rss += v;
	else if (field_kb(line, "Shared_Hugetlb", &v) || field_kb(line, "Private_Hugetlb", &v))
		w->st->guest_resident += v;
}

static void rollup_line(struct smaps_walk *w, const char *line)
{
	uint64_t v;

	if (field_kb(line, "Rss", &v))
		w->st->rss = v;
	else if (field_kb(line, "Pss", &v))
		w->st->pss = v;
	else if (field_kb(line, "Private_Dirty", &v))
		w->st->private_dirty = v;
	else if (field_kb(line, "Shared_Hugetlb", &v) || field_kb(line, "Private_Hugetlb", &v))
		w->st->hugetlb += v;
}

/* Feed @path to @fn line by line through a stack buffer (no allocation). 0 or -errno. */
static int for_each_line(const char *path, struct smaps_walk *w,
			 void (*fn)(struct smaps_walk *, const char *))
{
	char buf[4096 + LINE_MAX_LEN];
	size_t have = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		char *line = buf, *nl;

		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
			*nl = '\0';
			fn(w, line);
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		if (have >= LINE_MAX_LEN + 4096 - 1)
			have = 0; /* a line longer than any smaps line: drop it */
		memmove(buf, line, have);
	}
	close(fd);
	return n < 0 ? -EIO : 0;
}

int mem_stats_read(const void *guest, uint64_t guest_size, struct mem_stats *out)
{
	struct smaps_walk w = {
	    .guest_start = (uintptr_t)guest,
	    .guest_end = (uintptr_t)guest + (uintptr_t)guest_size,
	    .st = out,
	};
	int ret;

	memset(out, 0, sizeof(*out));
	ret = for_each_line("/proc/self/smaps_rollup", &w, rollup_line);
	if (ret == 0 && guest_size)
		ret = for_each_line("/proc/self/smaps", &w, smaps_line);
	if (ret < 0)
		return ret;
	out->guest_resident += w.guest_rss;
	out->vmm_resident = out->rss > w.guest_rss ? out->rss - w.guest_rss : 0;
	return 0;
}
