/*
 * mirror.c - a memfd mapped twice back to back (see mirror.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mirror.h"

int mirror_map(const char *name, uint64_t size, uint8_t **out)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	uint8_t *base = MAP_FAILED;
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		goto out;
	}
	base = mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	if (mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, 0) == MAP_FAILED ||
	    mmap(base + size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		rc = -errno;
		munmap(base, 2 * size);
		goto out;
	}
	*out = base;
out:
	close(fd);
	return rc;
}

void mirror_unmap(uint8_t *base, uint64_t size)
{
	if (base)
		munmap(base, 2 * size);
}
