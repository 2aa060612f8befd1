/* Same-host upgrade: the memfd's checks on the receiving side, the source letting go of it. */
#include "migration/upgrade.h"

#include "util/errmsg.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#define fail(err, ret, ...) errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)

bool mig_upgrade_possible(const struct vm *vm, const struct mig_url *u)
{
	return u->kind == MIG_URL_UNIX && vm->mem_fd >= 0;
}

int mig_memfd_check(int fd, uint64_t size, char *err)
{
	struct stat st;
	struct statfs sf;
	int seals, fl = fcntl(fd, F_GETFL);

	if (fstat(fd, &st) < 0 || fstatfs(fd, &sf) < 0 || fl < 0)
		return fail(err, -errno, "the memory handed over: %s", strerror(errno));
	if (!S_ISREG(st.st_mode) || (sf.f_type != TMPFS_MAGIC && sf.f_type != HUGETLBFS_MAGIC))
		return fail(err, -EINVAL, "the memory handed over is not a memfd");
	if ((uint64_t)st.st_size != size)
		return fail(err, -EINVAL, "the memory handed over is %llu bytes, the VM has %llu",
			    (unsigned long long)st.st_size, (unsigned long long)size);
	if ((fl & O_ACCMODE) != O_RDWR)
		return fail(err, -EACCES, "the memory handed over is not open for writing");
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & MEM_MEMFD_SEALS) != MEM_MEMFD_SEALS)
		return fail(err, -EINVAL,
			    "the memory handed over is not sealed against resizing (a holder "
			    "could truncate it under the guest)");
	if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))
		return fail(err, -EACCES, "the memory handed over is sealed against writing");
	return 0;
}

int mig_upgrade_detach(struct vm *vm)
{
	void *p = mmap(vm->mem_base, vm->mem_map_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);

	return p == MAP_FAILED ? -errno : 0;
}
