/*
 * sync_fault.c - an LD_PRELOAD shim for tests: fdatasync() and fsync() fail
 * with the errno in $RSX_SYNC_FAULT_ERRNO (default ENOSPC) while the file
 * named by $RSX_SYNC_FAULT_FLAG exists; otherwise they are the real calls.
 * Built by the test that uses it (gcc -shared -fPIC).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failing(void)
{
	const char *flag = getenv("RSX_SYNC_FAULT_FLAG");
	if (!flag || access(flag, F_OK) != 0)
		return 0;
	const char *e = getenv("RSX_SYNC_FAULT_ERRNO");
	errno = e ? atoi(e) : ENOSPC;
	return 1;
}

int fdatasync(int fd)
{
	if (failing())
		return -1;
	return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
	if (failing())
		return -1;
	return (int)syscall(SYS_fsync, fd);
}
