/*
 * wal_files.c - the WAL directory: names, listing, directory fsync, zero
 * fill, consumer positions, the tip file as readers see it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "wal_internal.h"

uint64_t wal_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t wal_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int wal_path(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, WAL_PATH_MAX, "%s/%s", dir, name);
	return n < 0 || n >= WAL_PATH_MAX ? -ENAMETOOLONG : 0;
}

int wal_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int wal_mkdirs(const char *dir)
{
	char buf[WAL_PATH_MAX];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof buf)
		return RSX_EINVALID;
	memcpy(buf, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) == 0) {
			/* make the new entry durable in its parent */
			char parent[WAL_PATH_MAX];
			memcpy(parent, buf, i + 1);
			char *slash = strrchr(parent, '/');
			if (slash == parent)
				parent[1] = '\0';
			else if (slash)
				*slash = '\0';
			else
				strcpy(parent, ".");
			int rc = wal_fsync_dir(parent);
			if (rc < 0)
				return rc;
		} else if (errno != EEXIST) {
			return -errno;
		}
		buf[i] = c;
	}
	struct stat st;
	if (stat(dir, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Parse a decimal u64 at s (at least one digit); returns chars used or 0. */
static size_t parse_u64(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	size_t i = 0;
	while (isdigit((unsigned char)s[i])) {
		unsigned d = (unsigned)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return 0;
		x = x * 10 + d;
		i++;
	}
	*v = x;
	return i;
}

/*
 * Parse "S_rest.wal": returns 1 and fills stream + entry, or 0 if the name is
 * not a WAL file at all.
 */
static int parse_name(const char *name, uint32_t *stream, struct wal_name *e)
{
	size_t len = strlen(name);
	if (len < 7 || len > WAL_NAME_MAX || strcmp(name + len - 4, ".wal") != 0)
		return 0;
	uint64_t s, a, b;
	size_t i = parse_u64(name, &s);
	if (i == 0 || name[i] != '_' || s == 0 || s > UINT32_MAX)
		return 0;
	const char *rest = name + i + 1;
	size_t rlen = len - i - 1 - 4;	/* without ".wal" */
	memset(e, 0, sizeof *e);
	memcpy(e->name, name, len + 1);
	*stream = (uint32_t)s;
	size_t j = parse_u64(rest, &a);
	if (j > 0 && j < rlen && rest[j] == '_') {
		if (rlen - j - 1 == 6 && memcmp(rest + j + 1, "active", 6) == 0 && a > 0) {
			e->kind = WAL_ACTIVE;
			e->first = a;
			return 1;
		}
		size_t k = parse_u64(rest + j + 1, &b);
		if (k > 0 && j + 1 + k == rlen && a > 0 && b >= a) {
			e->kind = WAL_ROTATED;
			e->first = a;
			e->last = b;
			return 1;
		}
	}
	e->kind = WAL_OTHER;
	return 1;
}

static int cmp_names(const void *pa, const void *pb)
{
	const struct wal_name *a = pa, *b = pb;
	int oa = a->kind == WAL_OTHER, ob = b->kind == WAL_OTHER;
	if (oa != ob)
		return oa - ob;
	if (oa)
		return strcmp(a->name, b->name);
	if (a->first != b->first)
		return a->first < b->first ? -1 : 1;
	/* same first seq: rotated before active (a crash can leave both) */
	return a->kind - b->kind;
}

int wal_list(const char *dir, uint32_t *stream, struct wal_name **out)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	size_t n = 0, cap = 16;
	struct wal_name *v = malloc(cap * sizeof *v);
	uint32_t want = *stream, seen = 0;
	int rc = 0;
	if (!v) {
		closedir(d);
		return -ENOMEM;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		struct wal_name e;
		uint32_t s;
		if (!parse_name(de->d_name, &s, &e))
			continue;
		if (want == 0) {
			if (seen != 0 && seen != s) {
				rc = RSX_ESTREAM;
				break;
			}
			seen = s;
		} else if (s != want) {
			continue;
		}
		if (n == cap) {
			struct wal_name *nv = realloc(v, 2 * cap * sizeof *v);
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap *= 2;
		}
		v[n++] = e;
	}
	closedir(d);
	if (rc < 0) {
		free(v);
		return rc;
	}
	if (want == 0)
		*stream = seen;
	qsort(v, n, sizeof *v, cmp_names);
	*out = v;
	return (int)n;
}

int wal_zero_fill(int fd, uint64_t from, uint64_t to)
{
	static const uint8_t zeros[1 << 16];
	while (from < to) {
		size_t n = to - from < sizeof zeros ? (size_t)(to - from) : sizeof zeros;
		ssize_t w = pwrite(fd, zeros, n, (off_t)from);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		from += (uint64_t)w;
	}
	return 0;
}

int wal_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		if (w)
			return 0;
		b += 8;
		n -= 8;
	}
	while (n--)
		if (*b++)
			return 0;
	return 1;
}

void wal_tip_name(char *out, size_t cap, uint32_t stream)
{
	snprintf(out, cap, "%" PRIu32 ".tip", stream);
}

int wal_lock_held(const char *dir, uint32_t stream)
{
	char name[64], path[WAL_PATH_MAX];
	snprintf(name, sizeof name, "%" PRIu32 ".lock", stream);
	if (wal_path(path, dir, name) < 0)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* F_OFD_GETLK tests without taking the lock: a writer starting now is not disturbed */
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	close(fd);
	return held;
}

int wal_tip_copy(const volatile struct rsx_wal_tip *src, struct rsx_wal_tip *out)
{
	for (int tries = 0; tries < 100000; tries++) {
		uint64_t v1 = __atomic_load_n(&src->version, __ATOMIC_ACQUIRE);
		if (v1 & 1)
			continue;
		memcpy(out, (const void *)src, sizeof *out);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint64_t v2 = __atomic_load_n(&src->version, __ATOMIC_RELAXED);
		if (v1 == v2)
			return out->magic == RSX_WAL_TIP_MAGIC ? 0 : RSX_EINVALID;
	}
	return -EAGAIN;
}

int rsx_wal_tip_read(const char *dir, uint32_t stream_id, struct rsx_wal_tip *out)
{
	char name[64], path[WAL_PATH_MAX];
	wal_tip_name(name, sizeof name, stream_id);
	int rc = wal_path(path, dir, name);
	if (rc < 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof *out) {
		close(fd);
		return RSX_EINVALID;
	}
	/* pread copies are not atomic against the writer: retry on a torn copy */
	for (int tries = 0; tries < 100000; tries++) {
		ssize_t n = pread(fd, out, sizeof *out, 0);
		if (n != (ssize_t)sizeof *out) {
			close(fd);
			return n < 0 ? -errno : RSX_EINVALID;
		}
		uint64_t v1 = out->version;
		if (v1 & 1)
			continue;
		uint64_t v2;
		if (pread(fd, &v2, sizeof v2, offsetof(struct rsx_wal_tip, version)) != sizeof v2)
			break;
		if (v1 == v2) {
			close(fd);
			return out->magic == RSX_WAL_TIP_MAGIC && out->stream_id == stream_id
			       ? 0 : RSX_EINVALID;
		}
	}
	close(fd);
	return -EAGAIN;
}

/* ---- consumer positions: dir/consumers/NAME = "<seq>\n" ---- */

int rsx_wal_consumer_name_check(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 63 || name[0] == '.')
		return RSX_EINVALID;
	/* NAME.tmp is how a position is written (temp + rename): never a name */
	if (n >= 4 && strcmp(name + n - 4, ".tmp") == 0)
		return RSX_EINVALID;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-'))
			return RSX_EINVALID;
	}
	return 0;
}

/*
 * Reading and dropping take any name retention honours (a plain file name in
 * consumers/, not a temp file), so a position that predates the name rules
 * or was put there by hand can still be seen and removed.
 */
static int check_consumer_file(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > WAL_NAME_MAX || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || (n >= 4 && strcmp(name + n - 4, ".tmp") == 0))
		return RSX_EINVALID;
	return 0;
}

static int consumers_dir(char *out, const char *dir)
{
	return wal_path(out, dir, "consumers");
}

int rsx_wal_consumer_set(const char *dir, const char *name, uint64_t seq)
{
	char cdir[WAL_PATH_MAX], path[WAL_PATH_MAX], tmp[WAL_PATH_MAX + 8];
	int rc = rsx_wal_consumer_name_check(name);
	if (rc < 0)
		return rc;
	if ((rc = consumers_dir(cdir, dir)) < 0 || (rc = wal_mkdirs(cdir)) < 0 ||
	    (rc = wal_path(path, cdir, name)) < 0)
		return rc;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	char line[32];
	int len = snprintf(line, sizeof line, "%" PRIu64 "\n", seq);
	if (write(fd, line, (size_t)len) != len || fsync(fd) < 0) {
		rc = errno ? -errno : -EIO;
		close(fd);
		unlink(tmp);
		return rc;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		rc = -errno;
		unlink(tmp);
		return rc;
	}
	return wal_fsync_dir(cdir);
}

/* The stored position in path; 0 or RSX_EINVALID (not "<decimal>\n"), -errno. */
static int read_position(const char *path, uint64_t *seq)
{
	char line[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, line, sizeof line - 1);
	close(fd);
	if (n <= 0)
		return RSX_EINVALID;
	line[n] = '\0';
	size_t used = parse_u64(line, seq);
	return used > 0 && (line[used] == '\n' || line[used] == '\0') ? 0 : RSX_EINVALID;
}

/* dir/consumers and the position file of a name retention honours. Returns 0 or an error. */
static int consumer_file(const char *dir, const char *name, char *cdir, char *path)
{
	int rc = check_consumer_file(name);
	if (rc < 0 || (rc = consumers_dir(cdir, dir)) < 0)
		return rc;
	return wal_path(path, cdir, name);
}

int rsx_wal_consumer_get(const char *dir, const char *name, uint64_t *seq)
{
	char cdir[WAL_PATH_MAX], path[WAL_PATH_MAX];
	int rc = consumer_file(dir, name, cdir, path);
	return rc < 0 ? rc : read_position(path, seq);
}

int wal_consumer_bounds(const char *dir, struct wal_consumer_bounds *b)
{
	char cdir[WAL_PATH_MAX], path[WAL_PATH_MAX];
	memset(b, 0, sizeof *b);
	b->min = UINT64_MAX;
	int rc = consumers_dir(cdir, dir);
	if (rc < 0)
		return rc;
	DIR *d = opendir(cdir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* a position being written (NAME.tmp): no registered name ends in .tmp */
		if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0)
			continue;
		uint64_t seq;
		b->count++;
		if (wal_path(path, cdir, de->d_name) < 0 || read_position(path, &seq) < 0) {
			b->unreadable++;
			b->min = 0;	/* whatever it needs is kept */
			continue;
		}
		if (seq < b->min)
			b->min = seq;
		if (seq > b->max) {
			b->max = seq;
			snprintf(b->max_name, sizeof b->max_name, "%s", de->d_name);
		}
	}
	closedir(d);
	return b->count;
}

int rsx_wal_published(const char *dir, uint32_t stream_id, struct rsx_wal_loss *out)
{
	struct rsx_wal_tip tip;
	struct wal_consumer_bounds b;
	if (!dir || !out || stream_id == 0)
		return RSX_EINVALID;
	memset(out, 0, sizeof *out);
	if (rsx_wal_tip_read(dir, stream_id, &tip) == 0)
		out->tip_seq = tip.durable_seq;
	int rc = wal_consumer_bounds(dir, &b);
	if (rc < 0)
		return rc;
	out->consumer_seq = b.max;
	memcpy(out->consumer, b.max_name, sizeof out->consumer);
	out->published_seq = out->tip_seq > out->consumer_seq ? out->tip_seq : out->consumer_seq;
	return 0;
}

int rsx_wal_consumer_drop(const char *dir, const char *name)
{
	char cdir[WAL_PATH_MAX], path[WAL_PATH_MAX];
	int rc = consumer_file(dir, name, cdir, path);
	if (rc < 0)
		return rc;
	if (unlink(path) < 0)
		return -errno;
	return wal_fsync_dir(cdir);
}
