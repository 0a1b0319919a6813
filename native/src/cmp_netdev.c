/*
 * cmp_netdev.c - network namespaces and interface facts for the backends:
 * enter a namespace for setup only (sockets stay in the namespace they were
 * made in), interface index / MAC / IPv4, neighbour (ARP) lookups for the
 * AF_XDP sender, and the ethtool ioctl that switches tx checksum offload.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "cmp_int.h"

int cmp_netns_enter(const char *netns, struct cmp_netns_guard *g)
{
	g->saved = -1;
	if (!netns || !netns[0])
		return 0;
	/* thread-self: setns() moves only the calling thread, so save exactly that. */
	int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved < 0)
		return -errno;
	int fd = open(netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		close(saved);
		return rc;
	}
	if (setns(fd, CLONE_NEWNET) < 0) {
		int rc = -errno;
		close(fd);
		close(saved);
		return rc;
	}
	close(fd);
	g->saved = saved;
	return 0;
}

void cmp_netns_leave(struct cmp_netns_guard *g)
{
	if (g->saved >= 0) {
		setns(g->saved, CLONE_NEWNET);
		close(g->saved);
		g->saved = -1;
	}
}

static int ifreq_ioctl(const char *ifname, unsigned long req, struct ifreq *ifr)
{
	if (strlen(ifname) >= IFNAMSIZ)
		return RSX_EINVALID;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
	int rc = ioctl(fd, req, ifr) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int cmp_netdev_ifindex(const char *ifname)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	int rc = ifreq_ioctl(ifname, SIOCGIFINDEX, &ifr);
	return rc < 0 ? rc : ifr.ifr_ifindex;
}

int cmp_netdev_mac(const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	int rc = ifreq_ioctl(ifname, SIOCGIFHWADDR, &ifr);
	if (rc == 0)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return rc;
}

int cmp_netdev_ipv4(const char *ifname, uint32_t *ip)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_addr.sa_family = AF_INET;
	int rc = ifreq_ioctl(ifname, SIOCGIFADDR, &ifr);
	if (rc == 0)
		*ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr;
	return rc;
}

static int arp_lookup(int fd, const char *ifname, uint32_t ip, uint8_t mac[6])
{
	struct arpreq req;
	memset(&req, 0, sizeof(req));
	struct sockaddr_in *pa = (struct sockaddr_in *)&req.arp_pa;
	pa->sin_family = AF_INET;
	pa->sin_addr.s_addr = ip;
	strncpy(req.arp_dev, ifname, sizeof(req.arp_dev) - 1);
	if (ioctl(fd, SIOCGARP, &req) < 0)
		return -errno;
	if (!(req.arp_flags & ATF_COM))
		return -EAGAIN;	/* incomplete: resolution in progress */
	memcpy(mac, req.arp_ha.sa_data, 6);
	return 0;
}

int cmp_netdev_neigh(const char *ifname, uint32_t ip, uint8_t mac[6], int wait_ms)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = arp_lookup(fd, ifname, ip, mac);
	if (rc == 0 || wait_ms <= 0) {
		close(fd);
		return rc == 0 ? 0 : -EHOSTUNREACH;
	}
	/* Not known yet: let the kernel resolve it by sending one datagram to the discard port. */
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = ip };
	setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname));
	sendto(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof(sa));
	for (int i = 0; i < wait_ms; i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
		if (arp_lookup(fd, ifname, ip, mac) == 0) {
			close(fd);
			return 0;
		}
	}
	close(fd);
	return -EHOSTUNREACH;
}

static int ethtool_value(const char *netns, const char *ifname, uint32_t cmd, uint32_t *data)
{
	struct cmp_netns_guard g;
	struct ethtool_value ev = { .cmd = cmd, .data = *data };
	struct ifreq ifr;

	if (!ifname)
		return RSX_EINVALID;
	int rc = cmp_netns_enter(netns, &g);
	if (rc < 0)
		return rc;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_data = (void *)&ev;
	rc = ifreq_ioctl(ifname, SIOCETHTOOL, &ifr);
	cmp_netns_leave(&g);
	*data = ev.data;
	return rc;
}

int rsx_cmp_netdev_set_tx_csum(const char *netns, const char *ifname, int on)
{
	uint32_t v = on ? 1 : 0;
	return ethtool_value(netns, ifname, ETHTOOL_STXCSUM, &v);
}

int rsx_cmp_netdev_get_tx_csum(const char *netns, const char *ifname)
{
	uint32_t v = 0;
	int rc = ethtool_value(netns, ifname, ETHTOOL_GTXCSUM, &v);
	return rc < 0 ? rc : (v ? 1 : 0);
}
