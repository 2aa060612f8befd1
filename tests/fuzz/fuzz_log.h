/*
 * Devices log each broken rule once, and a fuzzer breaks rules millions
 * of times: the log goes to a FIFO nobody reads. Lines are still
 * formatted (their format strings see the fuzzer's values) and, once the
 * pipe is full, dropped by log_msg as for a log collector that fell
 * behind. (util/file refuses /dev/null: it is a device.)
 */
#ifndef BANYAN_TESTS_FUZZ_LOG_H
#define BANYAN_TESTS_FUZZ_LOG_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

static inline void fuzz_log_quiet(void)
{
	char dir[] = "/tmp/fuzz-log-XXXXXX", path[sizeof(dir) + 8];

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/log", dir);
	if (mkfifo(path, 0600) < 0 || log_open_file(path) < 0)
		abort();
	unlink(path); /* the descriptor stays open */
	rmdir(dir);
}

#endif
