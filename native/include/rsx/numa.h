/*
 * rsx/numa.h - the calling thread's NUMA memory policy, through the raw syscalls (no libnuma).
 *
 * The tuning plan gives each process a node; the placement API binds (or
 * prefers) the process's future allocations to it with set_mempolicy(2).
 * The policy is per thread and inherited by threads and children created
 * afterwards, so it is set at process start, before the slabs are mapped.
 */
#ifndef RSX_NUMA_H
#define RSX_NUMA_H

enum rsx_mempolicy {
	RSX_MPOL_DEFAULT = 0,   /* MPOL_DEFAULT: local allocation */
	RSX_MPOL_PREFERRED = 1, /* MPOL_PREFERRED: this node first, others when it is full */
	RSX_MPOL_BIND = 2,      /* MPOL_BIND: this node only */
};

/* The highest node number these calls accept (the mask is 1024 bits). */
#define RSX_NUMA_MAX_NODE 1023

/*
 * Set the calling thread's policy to `mode` on `node` (ignored for
 * RSX_MPOL_DEFAULT). Returns 0, -EINVAL for a bad mode or node, or -errno
 * from set_mempolicy (EINVAL: node has no memory or is outside the cpuset).
 */
int rsx_numa_set_mempolicy(int mode, int node);

/*
 * Read the calling thread's policy: *mode and the lowest node of its mask
 * (-1 when the mask is empty, as for MPOL_DEFAULT). Returns 0 or -errno.
 */
int rsx_numa_get_mempolicy(int *mode, int *node);

#endif
