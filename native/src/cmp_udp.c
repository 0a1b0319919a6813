/*
 * cmp_udp.c - the plain UDP backend: one non-blocking datagram socket,
 * sendmmsg / recvmmsg batches, poll() to sleep. Portable and the reference
 * the other backends are measured against.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "cmp_int.h"

struct udp_io {
	struct rsx_cmp_io base;
	int fd;
	struct mmsghdr rmsg[CMP_MAX_BATCH];
	struct iovec riov[CMP_MAX_BATCH];
	struct sockaddr_in rname[CMP_MAX_BATCH];
	struct mmsghdr smsg[CMP_MAX_BATCH];
	struct iovec siov[CMP_MAX_BATCH];
	struct sockaddr_in sname[CMP_MAX_BATCH];
	uint8_t rbuf[CMP_MAX_BATCH][CMP_MAX_DGRAM];
};

static void to_sockaddr(const struct rsx_cmp_addr *a, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = a->ip;
	sa->sin_port = htons(a->port);
}

static int udp_send(struct rsx_cmp_io *io, const struct cmp_txmsg *msgs, unsigned n)
{
	struct udp_io *u = (struct udp_io *)io;
	if (n > CMP_MAX_BATCH)
		n = CMP_MAX_BATCH;
	for (unsigned i = 0; i < n; i++) {
		to_sockaddr(&msgs[i].to, &u->sname[i]);
		u->siov[i].iov_base = (void *)msgs[i].buf;
		u->siov[i].iov_len = msgs[i].len;
		memset(&u->smsg[i].msg_hdr, 0, sizeof(u->smsg[i].msg_hdr));
		u->smsg[i].msg_hdr.msg_name = &u->sname[i];
		u->smsg[i].msg_hdr.msg_namelen = sizeof(u->sname[i]);
		u->smsg[i].msg_hdr.msg_iov = &u->siov[i];
		u->smsg[i].msg_hdr.msg_iovlen = 1;
	}
	int k = sendmmsg(u->fd, u->smsg, n, MSG_DONTWAIT);
	if (k >= 0)
		return k;
	if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
		return 0;
	/* The first datagram was refused for good (unreachable, too big...): consume it. */
	io->st->tx_errors++;
	return 1;
}

static int udp_recv(struct rsx_cmp_io *io, struct cmp_rxmsg *msgs, unsigned n)
{
	struct udp_io *u = (struct udp_io *)io;
	if (n > CMP_MAX_BATCH)
		n = CMP_MAX_BATCH;
	for (unsigned i = 0; i < n; i++) {
		u->rmsg[i].msg_hdr.msg_namelen = sizeof(u->rname[i]);
		u->rmsg[i].msg_hdr.msg_flags = 0;
	}
	int k = recvmmsg(u->fd, u->rmsg, n, MSG_DONTWAIT, NULL);
	if (k < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	for (int i = 0; i < k; i++) {
		msgs[i].buf = u->rbuf[i];
		msgs[i].len = u->rmsg[i].msg_len;
		msgs[i].truncated = (u->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
		memset(&msgs[i].from, 0, sizeof(msgs[i].from));
		msgs[i].from.ip = u->rname[i].sin_addr.s_addr;
		msgs[i].from.port = ntohs(u->rname[i].sin_port);
	}
	return k;
}

static void udp_release(struct rsx_cmp_io *io)
{
	(void)io;	/* buffers are reused by the next recvmmsg */
}

static int udp_wait(struct rsx_cmp_io *io, int64_t timeout_ns)
{
	struct udp_io *u = (struct udp_io *)io;
	struct pollfd p = { .fd = u->fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
	return ppoll(&p, 1, &ts, NULL) < 0 ? -errno : 0;
}

/* sk_drops of a socket (SO_MEMINFO), shared with the io_uring backend. */
uint64_t cmp_udp_drops(int fd)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);
	memset(mem, 0, sizeof(mem));
	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 || len < sizeof(uint32_t) * (SK_MEMINFO_DROPS + 1))
		return 0;
	return mem[SK_MEMINFO_DROPS];
}

static uint64_t udp_drops(struct rsx_cmp_io *io)
{
	return cmp_udp_drops(((struct udp_io *)io)->fd);
}

static void udp_close(struct rsx_cmp_io *io)
{
	struct udp_io *u = (struct udp_io *)io;
	close(u->fd);
	free(u);
}

static int udp_fd(struct rsx_cmp_io *io)
{
	return ((struct udp_io *)io)->fd;
}

static const struct rsx_cmp_io_ops udp_ops = {
	.send = udp_send,
	.recv = udp_recv,
	.release = udp_release,
	.wait = udp_wait,
	.drops = udp_drops,
	.fd = udp_fd,
	.close = udp_close,
};

/* Socket buffers: the FORCE variants (root) ignore rmem_max/wmem_max; fall back to the plain ones. */
static void set_buffers(int fd, uint32_t snd, uint32_t rcv)
{
	int v;
	if (snd && (v = (int)snd, setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	if (rcv && (v = (int)rcv, setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

/* Shared with the io_uring backend: a bound UDP socket inside cfg->netns. Returns fd or -errno. */
int cmp_udp_socket(const struct rsx_cmp_config *cfg, int nonblock, struct rsx_cmp_addr *bound)
{
	struct cmp_netns_guard g;
	int rc = cmp_netns_enter(cfg->netns, &g);
	if (rc < 0)
		return rc;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		rc = -errno;
		cmp_netns_leave(&g);
		return rc;
	}
	set_buffers(fd, cfg->sndbuf, cfg->rcvbuf);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	to_sockaddr(&cfg->local, &sa);
	/* No SO_REUSEADDR / SO_REUSEPORT: a second socket on this port must fail (lesson 41). */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		rc = -errno;
		close(fd);
		cmp_netns_leave(&g);
		return rc;
	}
	cmp_netns_leave(&g);
	memset(bound, 0, sizeof(*bound));
	bound->ip = sa.sin_addr.s_addr;
	bound->port = ntohs(sa.sin_port);
	return fd;
}

int cmp_udp_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_io **out)
{
	struct udp_io *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	int fd = cmp_udp_socket(cfg, 1, &u->base.local);
	if (fd < 0) {
		free(u);
		return fd;
	}
	u->fd = fd;
	u->base.ops = &udp_ops;
	for (unsigned i = 0; i < CMP_MAX_BATCH; i++) {
		u->riov[i].iov_base = u->rbuf[i];
		u->riov[i].iov_len = sizeof(u->rbuf[i]);
		u->rmsg[i].msg_hdr.msg_name = &u->rname[i];
		u->rmsg[i].msg_hdr.msg_iov = &u->riov[i];
		u->rmsg[i].msg_hdr.msg_iovlen = 1;
	}
	*out = &u->base;
	return 0;
}
