/*
 * numa.c - set_mempolicy / get_mempolicy by raw syscall, so the build needs no libnuma.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rsx/numa.h"

#define MASK_LONGS ((RSX_NUMA_MAX_NODE + 1) / (8 * sizeof(unsigned long)))
#define LONG_BITS (8 * sizeof(unsigned long))

int rsx_numa_set_mempolicy(int mode, int node)
{
	unsigned long mask[MASK_LONGS];

	if (mode == RSX_MPOL_DEFAULT)
		return syscall(SYS_set_mempolicy, 0, NULL, 0) < 0 ? -errno : 0;
	if ((mode != RSX_MPOL_PREFERRED && mode != RSX_MPOL_BIND) || node < 0 ||
	    node > RSX_NUMA_MAX_NODE)
		return -EINVAL;
	memset(mask, 0, sizeof(mask));
	mask[node / LONG_BITS] = 1ul << (node % LONG_BITS);
	/* maxnode counts bits; the kernel (mm/mempolicy.c get_nodes) ignores the last one. */
	if (syscall(SYS_set_mempolicy, mode, mask, (unsigned long)RSX_NUMA_MAX_NODE + 2) < 0)
		return -errno;
	return 0;
}

int rsx_numa_get_mempolicy(int *mode, int *node)
{
	unsigned long mask[MASK_LONGS];
	int m = 0;

	if (!mode || !node)
		return -EINVAL;
	memset(mask, 0, sizeof(mask));
	if (syscall(SYS_get_mempolicy, &m, mask, (unsigned long)RSX_NUMA_MAX_NODE + 2, NULL, 0) < 0)
		return -errno;
	*mode = m;
	*node = -1;
	for (unsigned i = 0; i < MASK_LONGS && *node < 0; i++)
		if (mask[i])
			*node = (int)(i * LONG_BITS) + __builtin_ctzl(mask[i]);
	return 0;
}
