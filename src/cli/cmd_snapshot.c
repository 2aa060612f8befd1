/*
 * `banyan snapshot`: the snapshots of a store directory, offline.
 *   list     one line per snapshot
 *   tree     the parent/child tree with types, sizes and times
 *   show S   one snapshot's manifest, checked
 *   verify S every checksum, memory included
 *   delete S [--merge]
 * S is a directory name inside the store or a snapshot id; show and verify
 * also take a path.
 */
#include "cli/cli.h"

#include "snapshot/store.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void snapshot_usage(FILE *f)
{
	fprintf(f, "usage: banyan snapshot --store DIR list|tree\n"
		   "       banyan snapshot [--store DIR] show|verify SNAPSHOT\n"
		   "       banyan snapshot --store DIR delete [--merge] SNAPSHOT\n"
		   "  --store DIR   the directory holding the snapshots\n"
		   "  --merge       delete a snapshot diffs depend on by folding it into them\n"
		   "  --json        show: print the manifest as stored\n"
		   "SNAPSHOT is a directory name in the store or a snapshot id (show and\n"
		   "verify also take a path). Exit status: 0 ok, 1 refused or corrupt, 2 usage.\n");
}

static void human_size(uint64_t b, char *out, size_t len)
{
	const char *units = "BKMGT";
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static void when(uint64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void print_list(struct store_entry *v, unsigned int n)
{
	printf("%-24s %-4s %-24s %-19s %8s %8s\n", "NAME", "TYPE", "PARENT", "CREATED", "DISK",
	       "MEMORY");
	for (unsigned int i = 0; i < n; i++) {
		int p = store_parent(v, n, i);
		char disk[16], mem[16], t[32];

		human_size(v[i].disk, disk, sizeof(disk));
		human_size(v[i].m.mem_size, mem, sizeof(mem));
		when(v[i].m.created, t, sizeof(t));
		printf("%-24s %-4s %-24s %-19s %8s %8s\n", v[i].name,
		       v[i].m.type == SNAP_DIFF ? "diff" : "full",
		       p >= 0		     ? v[p].name
		       : v[i].m.parent_id[0] ? "(outside)"
					     : "-",
		       t, disk, mem);
	}
}

static void print_node(struct store_entry *v, unsigned int n, unsigned int i, const char *indent,
		       bool last, bool root)
{
	char disk[16], t[32], next[512];
	unsigned int kids = 0, seen = 0;

	human_size(v[i].disk, disk, sizeof(disk));
	when(v[i].m.created, t, sizeof(t));
	printf("%s%s%s  [%s, %s, %s]\n", indent,
	       root   ? ""
	       : last ? "`-- "
		      : "|-- ",
	       v[i].name, v[i].m.type == SNAP_DIFF ? "diff" : "full", disk, t);
	snprintf(next, sizeof(next), "%s%s", indent, root ? "" : last ? "    " : "|   ");
	for (unsigned int j = 0; j < n; j++)
		kids += store_parent(v, n, j) == (int)i;
	for (unsigned int j = 0; j < n; j++)
		if (store_parent(v, n, j) == (int)i)
			print_node(v, n, j, next, ++seen == kids, false);
}

static void print_tree(struct store_entry *v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (store_parent(v, n, i) < 0)
			print_node(v, n, i, "", true, true);
}

static int show(const char *path, bool verify)
{
	struct snap_manifest m;
	char err[SNAP_ERR_LEN] = "", t[32], disk[16];
	int ret = snap_read_manifest(path, &m, err);

	if (ret == 0)
		ret = snap_verify(path, &m, verify, err);
	if (ret < 0) {
		fprintf(stderr, "banyan snapshot: %s\n", err);
		return 1;
	}
	when(m.created, t, sizeof(t));
	human_size(snap_disk_usage(path), disk, sizeof(disk));
	printf("path            %s\nid              %s\ntype            %s\n", path, m.id,
	       m.type == SNAP_DIFF ? "diff" : "full");
	printf("parent          %s%s%s\n", m.parent_id[0] ? m.parent_id : "-",
	       m.parent_id[0] ? " at " : "", m.parent_path);
	printf("created         %s\nformat version  %u\nvmm version     %s\nvcpus           %u\n",
	       t, m.version, m.vmm_version, m.ncpus);
	printf("memory          %llu MiB, %llu pages defined, %llu stored\non disk         %s\n",
	       (unsigned long long)(m.mem_size >> 20), (unsigned long long)m.mem_pages_present,
	       (unsigned long long)m.mem_pages_data, disk);
	for (unsigned int i = 0; i < m.nsections; i++)
		printf("section         %-10s %8llu bytes  crc32 %08x\n", m.sections[i].name,
		       (unsigned long long)m.sections[i].size, m.sections[i].crc);
	printf("checked         %s\n",
	       verify ? "sections and memory" : "sections (verify: memory too)");
	return 0;
}

/* A snapshot named on the command line: in the store, or a path. */
static const char *resolve(const char *store, struct store_entry *v, unsigned int n,
			   const char *name)
{
	int i = v ? store_find(v, n, name) : -1;

	(void)store;
	return i >= 0 ? v[i].path : name;
}

static int run_verb(const char *store, const char *verb, const char *arg, bool merge)
{
	struct store_entry *v = NULL;
	unsigned int n = 0;
	char err[SNAP_ERR_LEN] = "";
	int i, status = 0;

	if (store && store_scan(store, &v, &n, err) < 0) {
		fprintf(stderr, "banyan snapshot: %s\n", err);
		return 1;
	}
	if (strcmp(verb, "list") == 0)
		print_list(v, n);
	else if (strcmp(verb, "tree") == 0)
		print_tree(v, n);
	else if (strcmp(verb, "show") == 0 || strcmp(verb, "verify") == 0)
		status = show(resolve(store, v, n, arg), strcmp(verb, "verify") == 0);
	else if ((i = store_find(v, n, arg)) < 0)
		status =
		    (fprintf(stderr, "banyan snapshot: no snapshot '%s' in %s\n", arg, store), 1);
	else if (store_delete(v, n, (unsigned int)i, merge, err) < 0)
		status = (fprintf(stderr, "banyan snapshot: %s\n", err), 1);
	else
		printf("deleted %s\n", arg);
	free(v);
	return status;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"store", required_argument, NULL, 's'},
	    {"merge", no_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *store = NULL, *verb;
	bool merge = false, needs_arg, needs_store;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'h') {
			snapshot_usage(stdout);
			return 0;
		}
		if (opt == '?') {
			fprintf(stderr, "banyan snapshot: unknown option '%s'\n", argv[optind - 1]);
			return EXIT_USAGE;
		}
		if (opt == 's')
			store = optarg;
		else
			merge = true;
	}
	verb = optind < argc ? argv[optind] : "";
	needs_arg = !strcmp(verb, "show") || !strcmp(verb, "verify") || !strcmp(verb, "delete");
	needs_store = !strcmp(verb, "list") || !strcmp(verb, "tree") || !strcmp(verb, "delete");
	if ((!needs_arg && !needs_store) || argc - optind != (needs_arg ? 2 : 1) ||
	    (needs_store && !store)) {
		fprintf(stderr, "banyan snapshot: %s (see banyan snapshot --help)\n",
			!verb[0]		? "a command is required"
			: needs_store && !store ? "--store is required"
						: "bad arguments");
		return EXIT_USAGE;
	}
	return run_verb(store, verb, needs_arg ? argv[optind + 1] : NULL, merge);
}
