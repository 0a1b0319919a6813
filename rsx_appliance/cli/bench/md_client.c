/*
 * Load client of `rsx bench marketdata` (specs/marketdata.md 6), compiled at run time with gcc.
 *
 *   md_client HOST PORT CONNECTIONS SUBSCRIBE_JSON OUT_FILE
 *
 * Opens CONNECTIONS WebSocket connections, sends SUBSCRIBE_JSON on each, prints "READY n" once every
 * connection got its B snapshot, then reads with epoll until SIGINT/SIGTERM. Every D frame is checked
 * against its connection's chain (pu == the last u) and logged to OUT_FILE as
 * {u64 conn, u64 u, u64 pu, u64 recv_ns (CLOCK_REALTIME, one stamp per read)}. At the end it prints one
 * JSON object with the counts. Server frames are unmasked; client frames use mask 0 (RFC 6455 allows any).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	int open;
	int have_snapshot;
	uint64_t last_u;
	size_t len;
	unsigned char buf[1 << 17];
};

struct row {
	uint64_t conn, u, pu, recv_ns;
};

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_text(int fd, const char *text, int opcode)
{
	unsigned char hdr[8];
	size_t n = strlen(text);
	if (n > 125)
		return -1;
	hdr[0] = 0x80 | (unsigned char)opcode;
	hdr[1] = 0x80 | (unsigned char)n;
	memset(hdr + 2, 0, 4); /* mask key 0 */
	if (send_all(fd, hdr, 6) < 0)
		return -1;
	return send_all(fd, text, n);
}

/* the last n comma-separated integers before the closing "]}" of a message */
static int tail_ints(const unsigned char *p, size_t len, int n, uint64_t *out)
{
	size_t i = len;
	while (i > 0 && (p[i - 1] == '}' || p[i - 1] == ']'))
		i--;
	for (int k = n - 1; k >= 0; k--) {
		size_t end = i;
		while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
			i--;
		if (i == end)
			return -1;
		uint64_t v = 0;
		for (size_t j = i; j < end; j++)
			v = v * 10 + (uint64_t)(p[j] - '0');
		out[k] = v;
		if (k > 0) {
			if (i == 0 || p[i - 1] != ',')
				return -1;
			i--;
		}
	}
	return 0;
}

static int connect_one(const char *host, int port, const char *sub)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, host, &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char req[512];
	snprintf(req, sizeof req,
		 "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
		 host, port);
	if (send_all(fd, req, strlen(req)) < 0)
		goto fail;
	/* read the response headers byte by byte (once per connection) */
	char resp[2048];
	size_t n = 0;
	while (n < sizeof resp - 1) {
		ssize_t r = recv(fd, resp + n, 1, 0);
		if (r <= 0)
			goto fail;
		n++;
		if (n >= 4 && memcmp(resp + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	resp[n] = 0;
	if (strncmp(resp, "HTTP/1.1 101", 12) != 0)
		goto fail;
	if (send_text(fd, sub, 1) < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: md_client HOST PORT CONNECTIONS SUBSCRIBE_JSON OUT_FILE\n");
		return 2;
	}
	const char *host = argv[1];
	int port = atoi(argv[2]), nconn = atoi(argv[3]);
	const char *sub = argv[4];
	FILE *out = fopen(argv[5], "wb");
	if (!out) {
		perror("open out");
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct conn *cs = calloc((size_t)nconn, sizeof *cs);
	int ep = epoll_create1(0);
	int connected = 0;
	for (int i = 0; i < nconn; i++) {
		cs[i].fd = connect_one(host, port, sub);
		if (cs[i].fd < 0)
			continue;
		cs[i].open = 1;
		connected++;
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	uint64_t frames = 0, deltas = 0, snapshots = 0, broken = 0, closed = 0, bytes = 0, other = 0;
	uint64_t bad = 0;
	int ready_printed = 0;
	size_t nrows = 0, caprows = 1 << 20;
	struct row *rows = malloc(caprows * sizeof *rows);
	struct epoll_event evs[256];
	while (!stop) {
		if (!ready_printed && (int)snapshots >= connected) {
			printf("READY %d\n", connected);
			fflush(stdout);
			ready_printed = 1;
		}
		int ne = epoll_wait(ep, evs, 256, 50);
		for (int e = 0; e < ne; e++) {
			struct conn *c = &cs[evs[e].data.u32];
			ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
			if (r <= 0) {
				if (r < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->open = 0;
				closed++;
				continue;
			}
			uint64_t t = now_ns();
			bytes += (uint64_t)r;
			c->len += (size_t)r;
			size_t off = 0;
			for (;;) {
				if (c->len - off < 2)
					break;
				unsigned char *f = c->buf + off;
				int op = f[0] & 0x0f;
				uint64_t plen = f[1] & 0x7f;
				size_t h = 2;
				if (plen == 126) {
					if (c->len - off < 4)
						break;
					plen = ((uint64_t)f[2] << 8) | f[3];
					h = 4;
				} else if (plen == 127) {
					if (c->len - off < 10)
						break;
					plen = 0;
					for (int k = 0; k < 8; k++)
						plen = (plen << 8) | f[2 + k];
					h = 10;
				}
				if (c->len - off < h + plen)
					break;
				unsigned char *p = f + h;
				frames++;
				if (op == 1 && plen > 6 && p[0] == '{' && p[1] == '"') {
					if (p[2] == 'D' && p[3] == '"') {
						uint64_t v[3];
						if (tail_ints(p, plen, 3, v) == 0) {
							deltas++;
							if (!c->have_snapshot || v[2] != c->last_u)
								broken++;
							c->last_u = v[1];
							if (nrows == caprows) {
								caprows *= 2;
								rows = realloc(rows, caprows * sizeof *rows);
							}
							rows[nrows++] = (struct row){evs[e].data.u32, v[1], v[2], t};
						} else {
							bad++;
						}
					} else if (p[2] == 'B' && p[3] == '"') {
						uint64_t v[1];
						if (tail_ints(p, plen, 1, v) == 0) {
							snapshots++;
							c->have_snapshot = 1;
							c->last_u = v[0];
						} else {
							bad++;
						}
					} else {
						other++;
					}
				} else if (op == 9) {
					unsigned char pong[6] = {0x8a, 0x80, 0, 0, 0, 0};
					send_all(c->fd, pong, 6); /* empty pong is enough for the keepalive */
				} else if (op == 8) {
					closed++;
				}
				off += h + plen;
			}
			memmove(c->buf, c->buf + off, c->len - off);
			c->len -= off;
		}
	}
	fwrite(rows, sizeof *rows, nrows, out);
	fclose(out);
	int open_now = 0;
	for (int i = 0; i < nconn; i++)
		open_now += cs[i].open;
	printf("{\"connections\": %d, \"connected\": %d, \"open_at_end\": %d, \"frames\": %lu, \"deltas\": %lu, "
	       "\"snapshots\": %lu, \"broken\": %lu, \"closed\": %lu, \"unparsed\": %lu, \"other\": %lu, "
	       "\"bytes\": %lu}\n",
	       nconn, connected, open_now, (unsigned long)frames, (unsigned long)deltas,
	       (unsigned long)snapshots, (unsigned long)broken, (unsigned long)closed, (unsigned long)bad,
	       (unsigned long)other, (unsigned long)bytes);
	return 0;
}
