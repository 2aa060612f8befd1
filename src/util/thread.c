/* Thread start points: a name, then the process's hook (docs/security.md). */
#include "util/thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

/* Written once before any thread starts; read by each thread as it starts. */
static _Atomic(thread_enter_hook) enter_hook;
static atomic_uint unhooked; /* threads that entered before any hook was set */

void thread_set_enter_hook(thread_enter_hook hook)
{
	atomic_store(&enter_hook, hook);
}

void thread_enter(const char *name)
{
	thread_enter_hook hook = atomic_load(&enter_hook);
	char comm[16];

	snprintf(comm, sizeof(comm), "%s", name);
	pthread_setname_np(pthread_self(), comm);
	if (hook)
		hook(comm);
	else
		atomic_fetch_add(&unhooked, 1);
}

unsigned int thread_unhooked(void)
{
	return atomic_load(&unhooked);
}
