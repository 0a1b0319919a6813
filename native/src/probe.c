/*
 * probe.c - feature probes for `rsx version` and for backends choosing a default.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rsx/probe.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif

int rsx_probe_io_uring(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int fd = (int)syscall(__NR_io_uring_setup, 2, &p);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

int rsx_probe_af_xdp(void)
{
	int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

int rsx_probe_hugetlb(void)
{
	size_t len = 2u << 20;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	((volatile char *)p)[0] = 1;
	munmap(p, len);
	return 0;
}
