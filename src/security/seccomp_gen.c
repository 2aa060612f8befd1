/*
 * seccomp_gen OUTPUT.c: run at build time, compiles every role of
 * seccomp_filters.c through libseccomp for each deny action and writes the
 * BPF programs and the system call name table as C (seccomp_bpf.h), so the
 * VMM installs finished programs and never runs libseccomp. The unit test
 * test_seccomp_bpf compiles the lists again and compares.
 */
#include "security/seccomp_bpf.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const deny_names[SC_DENIES] = {"trap", "log"};

/* C identifiers for role names ("virtio-blk" -> "virtio_blk"). */
static void put_ident(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == '-' ? '_' : *s, f);
}

static int put_prog(FILE *f, int deny, int role, unsigned short *len)
{
	struct sock_fprog p;
	int ret = sc_compile_role(&sc_roles[role], (enum sc_deny)deny, &p);

	if (ret < 0) {
		fprintf(stderr, "seccomp_gen: cannot compile role %s\n", sc_roles[role].name);
		return ret;
	}
	fprintf(f, "static const struct sock_filter %s_", deny_names[deny]);
	put_ident(f, sc_roles[role].name);
	fprintf(f, "[%u] = {\n", p.len);
	for (unsigned int i = 0; i < p.len; i++)
		fprintf(f, "    {0x%04x, %u, %u, 0x%08x},\n", p.filter[i].code, p.filter[i].jt,
			p.filter[i].jf, p.filter[i].k);
	fprintf(f, "};\n\n");
	*len = p.len;
	free(p.filter);
	return 0;
}

static int put_progs(FILE *f)
{
	unsigned short len[SC_DENIES][SC_ROLES];

	for (int d = 0; d < SC_DENIES; d++)
		for (int r = 0; r < SC_ROLES; r++)
			if (put_prog(f, d, r, &len[d][r]) < 0)
				return -1;
	fprintf(f, "const struct sc_prog sc_progs[SC_DENIES][SC_ROLES] = {\n");
	for (int d = 0; d < SC_DENIES; d++) {
		fprintf(f, "    {\n");
		for (int r = 0; r < SC_ROLES; r++) {
			fprintf(f, "\t{%s_", deny_names[d]);
			put_ident(f, sc_roles[r].name);
			fprintf(f, ", %u},\n", len[d][r]);
		}
		fprintf(f, "    },\n");
	}
	fprintf(f, "};\n\n");
	return 0;
}

static void put_names(FILE *f)
{
	char name[sizeof(sc_names[0])];

	fprintf(f, "const char sc_names[SC_NAMES][%zu] = {\n", sizeof(name));
	for (int nr = 0; nr < SC_NAMES; nr++) {
		sc_resolve_name(nr, name, sizeof(name));
		if (name[0])
			fprintf(f, "    [%d] = \"%s\",\n", nr, name);
	}
	fprintf(f, "};\n");
}

int main(int argc, char **argv)
{
	FILE *f = argc == 2 ? fopen(argv[1], "w") : NULL;
	int ret;

	if (!f) {
		fprintf(stderr, "usage: seccomp_gen OUTPUT.c (a writable path)\n");
		return 2;
	}
	fprintf(f, "/* Generated at build time by seccomp_gen from seccomp_filters.c. */\n"
		   "#include \"security/seccomp_bpf.h\"\n\n");
	ret = put_progs(f);
	if (ret == 0)
		put_names(f);
	if (fclose(f) != 0 || ret < 0) {
		remove(argv[1]);
		return 1;
	}
	return 0;
}
