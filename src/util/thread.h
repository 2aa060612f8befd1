/*
 * Thread start points: every thread Banyan starts calls thread_enter()
 * first, which names it (logs, /proc and the seccomp audit map a tid to
 * its role by that name) and runs the process's start hook, the sandbox
 * (src/security), which util cannot call itself: it sits above util.
 */
#ifndef BANYAN_UTIL_THREAD_H
#define BANYAN_UTIL_THREAD_H

/* Called by thread_enter() with the thread's name; must not return on failure. */
typedef void (*thread_enter_hook)(const char *name);

/*
 * Set the hook every later thread_enter() runs (NULL: none). Called once,
 * by the process's main thread before it starts any thread; never fails.
 */
void thread_set_enter_hook(thread_enter_hook hook);

/*
 * Name the calling thread @name (at most 15 characters are kept, e.g.
 * "vcpu0", "virtio-blk0", "api") and run the hook, if any, on it. Called
 * first thing in a thread's start routine; never fails (the hook ends the
 * process itself when the thread cannot be sandboxed).
 */
void thread_enter(const char *name);

/* How many threads entered while no hook was set (they run unsandboxed). */
unsigned int thread_unhooked(void);

#endif
