/*
 * The allowlists' shape, shared by seccomp_filters.c (which lists them),
 * seccomp_compile.c (which compiles them at build time) and seccomp.c
 * (which installs and prints them). Internal to security/.
 */
#ifndef BANYAN_SECURITY_SECCOMP_RULES_H
#define BANYAN_SECURITY_SECCOMP_RULES_H

#include <stddef.h>
#include <stdint.h>

enum sc_op {
	SC_ANY,	      /* any arguments */
	SC_EQ,	      /* argument @arg equals @value (low 32 bits for ioctl requests) */
	SC_MASK_ZERO, /* argument @arg has none of the bits of @value (e.g. PROT_EXEC) */
};
/* No op takes a value known only at run time: the programs are built at build time. */

struct sc_rule {
	int nr;		  /* system call number (x86_64) */
	uint8_t op;	  /* enum sc_op */
	uint8_t arg;	  /* which argument @op tests, 0-based */
	uint64_t value;	  /* see enum sc_op */
	const char *what; /* @value's name for the lists (e.g. "KVM_RUN") */
};

/* A group of rules for one purpose (the base every thread needs, KVM, ...). */
struct sc_group {
	const struct sc_rule *rules;
	size_t n;
};

#define SC_MAX_GROUPS 24 /* main has 22, 23 in sanitizer builds; loops also stop here */

/* A role: the threads whose names begin with @prefix, and what they may call. */
struct sc_role {
	const char *name;
	const char *prefix;
	const char *alias; /* another prefix (threads libmicrohttpd names), or NULL */
	const struct sc_group *groups[SC_MAX_GROUPS]; /* NULL-terminated */
};

#define SC_ROLES 15

/* The roles, main last (it allows what every thread it starts allows). */
extern const struct sc_role sc_roles[SC_ROLES];

#endif
