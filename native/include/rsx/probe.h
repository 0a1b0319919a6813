/*
 * rsx/probe.h - what the running kernel lets this process use.
 *
 * Each probe creates and immediately closes the kernel object; it returns 0
 * when the mechanism works here, or -errno saying why not (-ENOSYS: not
 * compiled in, -EPERM: not allowed, -EAFNOSUPPORT: no such socket family).
 */
#ifndef RSX_PROBE_H
#define RSX_PROBE_H

int rsx_probe_io_uring(void);
int rsx_probe_af_xdp(void);
/* Map and touch one 2 MiB hugetlb page (needs a reserved pool). */
int rsx_probe_hugetlb(void);

#endif
