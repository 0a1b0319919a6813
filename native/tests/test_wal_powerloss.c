/*
 * test_wal_powerloss.c - power loss: every seq the writer reported durable
 * survives when the machine loses everything that was never synced.
 *
 * No device-mapper here (no dm-flakey, no dm-log-writes: /proc/misc has no
 * device-mapper and dmsetup cannot reach a driver), and a loop device has no
 * write cache to drop. So this is the fault-injecting file layer the issue
 * allows: this program defines open, close, pwrite, write, ftruncate, fsync,
 * fdatasync, rename and unlink itself (librsx.a is linked statically, so the
 * writer's calls land here; the real calls are raw syscalls). In a forked
 * child they log every operation on a file to an append-only log (data
 * writes before they happen, syncs and renames after they completed), then
 * the child runs a writer at full speed, reporting each durable seq through
 * a pipe from on_durable, and is killed with SIGKILL at a random moment.
 *
 * The parent replays the log against a model of the disk: a file's bytes
 * become durable only at an fsync/fdatasync of that file, a name (create,
 * rename, unlink) only at an fsync of its directory; everything else is lost
 * with the power. Half the rounds also keep a random unsynced prefix of each
 * file (writeback that happened to run: torn tails). The durable image is
 * written to a fresh directory, with the writer's latest tip file (the most
 * a stale tip could claim), and then:
 *   - a new writer must open it (it refuses below any published durable seq),
 *   - every seq up to the highest one reported durable is there, with its
 *     content, contiguous, and nothing is ever reused.
 * Rounds chain: the next child runs on the recovered image. The harness
 * can fail: RSX_POWERLOSS_NOSYNC=1 runs the child's writer without syncs
 * (RSX_WAL_NOSYNC, durable = written) and the test then fails at once.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_helpers.h"
#include "t_wal.h"

/* ------------------------------------------------------------ the logging layer */

enum op { OP_OPEN = 1, OP_CLOSE, OP_PWRITE, OP_ZERO, OP_TRUNC, OP_SYNC, OP_RENAME, OP_UNLINK };

struct entry {
	uint32_t op;
	int32_t fd;
	uint64_t a, b;		/* OPEN: flags; PWRITE/ZERO: offset, length; TRUNC: length */
	uint32_t len;		/* bytes after the header: path(s) or data */
	uint32_t magic;
};

#define ENTRY_MAGIC 0x4c4f4731u	/* "1GOL" */
#define MAX_FDS 1024

static int log_fd = -1;		/* >= 0 only in the logging child */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t tracked[MAX_FDS];	/* fds opened through open() below */
static uint64_t fd_pos[MAX_FDS];	/* their file position, for write() */

static void log_put(uint32_t op, int fd, uint64_t a, uint64_t b, const void *p1, size_t n1,
		    const void *p2, size_t n2)
{
	size_t total = sizeof(struct entry) + n1 + n2;
	uint8_t *buf = malloc(total);
	struct entry e = { op, fd, a, b, (uint32_t)(n1 + n2), ENTRY_MAGIC };
	memcpy(buf, &e, sizeof e);
	if (n1)
		memcpy(buf + sizeof e, p1, n1);
	if (n2)
		memcpy(buf + sizeof e + n1, p2, n2);
	syscall(SYS_write, log_fd, buf, total);
	free(buf);
}

static int is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static int logged(int fd)
{
	return log_fd >= 0 && fd >= 0 && fd < MAX_FDS && tracked[fd];
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (log_fd < 0)
		return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	pthread_mutex_lock(&log_lock);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	if (fd >= 0 && fd < MAX_FDS) {
		tracked[fd] = 1;
		fd_pos[fd] = 0;
		log_put(OP_OPEN, fd, (uint64_t)flags, 0, path, strlen(path) + 1, NULL, 0);
	}
	pthread_mutex_unlock(&log_lock);
	return fd;
}

int close(int fd)
{
	if (!logged(fd))
		return (int)syscall(SYS_close, fd);
	pthread_mutex_lock(&log_lock);
	tracked[fd] = 0;
	log_put(OP_CLOSE, fd, 0, 0, NULL, 0, NULL, 0);
	int rc = (int)syscall(SYS_close, fd);
	pthread_mutex_unlock(&log_lock);
	return rc;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (!logged(fd))
		return (ssize_t)syscall(SYS_pwrite64, fd, buf, n, off);
	pthread_mutex_lock(&log_lock);
	if (is_zero(buf, n))
		log_put(OP_ZERO, fd, (uint64_t)off, n, NULL, 0, NULL, 0);
	else
		log_put(OP_PWRITE, fd, (uint64_t)off, n, buf, n, NULL, 0);
	ssize_t rc = (ssize_t)syscall(SYS_pwrite64, fd, buf, n, off);
	pthread_mutex_unlock(&log_lock);
	return rc;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	if (!logged(fd))
		return (ssize_t)syscall(SYS_write, fd, buf, n);
	pthread_mutex_lock(&log_lock);
	log_put(OP_PWRITE, fd, fd_pos[fd], n, buf, n, NULL, 0);
	ssize_t rc = (ssize_t)syscall(SYS_write, fd, buf, n);
	if (rc > 0)
		fd_pos[fd] += (uint64_t)rc;
	pthread_mutex_unlock(&log_lock);
	return rc;
}

int ftruncate(int fd, off_t len)
{
	if (!logged(fd))
		return (int)syscall(SYS_ftruncate, fd, len);
	pthread_mutex_lock(&log_lock);
	log_put(OP_TRUNC, fd, (uint64_t)len, 0, NULL, 0, NULL, 0);
	int rc = (int)syscall(SYS_ftruncate, fd, len);
	pthread_mutex_unlock(&log_lock);
	return rc;
}

static int sync_and_log(int fd, long nr)
{
	if (!logged(fd))
		return (int)syscall(nr, fd);
	pthread_mutex_lock(&log_lock);
	int rc = (int)syscall(nr, fd);
	if (rc == 0)
		log_put(OP_SYNC, fd, 0, 0, NULL, 0, NULL, 0);	/* only a sync that completed counts */
	pthread_mutex_unlock(&log_lock);
	return rc;
}

int fsync(int fd)
{
	return sync_and_log(fd, SYS_fsync);
}

int fdatasync(int fd)
{
	return sync_and_log(fd, SYS_fdatasync);
}

int rename(const char *from, const char *to)
{
	if (log_fd < 0)
		return (int)syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
	pthread_mutex_lock(&log_lock);
	int rc = (int)syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
	if (rc == 0)
		log_put(OP_RENAME, -1, 0, 0, from, strlen(from) + 1, to, strlen(to) + 1);
	pthread_mutex_unlock(&log_lock);
	return rc;
}

int unlink(const char *path)
{
	if (log_fd < 0)
		return (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
	pthread_mutex_lock(&log_lock);
	int rc = (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
	if (rc == 0)
		log_put(OP_UNLINK, -1, 0, 0, path, strlen(path) + 1, NULL, 0);
	pthread_mutex_unlock(&log_lock);
	return rc;
}

/* ------------------------------------------------------------ the model of the disk */

struct inode {
	uint8_t *vol, *dur;	/* volatile (page cache) and durable contents */
	uint64_t vlen, dlen, vcap, dcap;
	int is_dir;
};

#define MAX_INODES 4096
#define MAX_NAMES 512

struct name {
	char path[512];
	int ino;
};

struct model {
	struct inode ino[MAX_INODES];
	int ninodes;
	struct name vol[MAX_NAMES], dur[MAX_NAMES];	/* namespaces: volatile and durable */
	int nvol, ndur;
	int fd_ino[MAX_FDS];
	char fd_path[MAX_FDS][512];	/* directories: their path */
	char dir[512];
};

static void grow(uint8_t **p, uint64_t *cap, uint64_t need)
{
	if (need <= *cap)
		return;
	uint64_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	*p = realloc(*p, c);
	memset(*p + *cap, 0, c - *cap);
	*cap = c;
}

static int name_find(struct name *v, int n, const char *path)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v[i].path, path) == 0)
			return i;
	return -1;
}

static void name_set(struct name *v, int *n, const char *path, int ino)
{
	int i = name_find(v, *n, path);
	if (i < 0) {
		i = (*n)++;
		snprintf(v[i].path, sizeof v[i].path, "%s", path);
	}
	v[i].ino = ino;
}

static void name_del(struct name *v, int *n, const char *path)
{
	int i = name_find(v, *n, path);
	if (i >= 0)
		v[i] = v[--*n];
}

static int new_inode(struct model *m)
{
	int i = m->ninodes++;
	memset(&m->ino[i], 0, sizeof m->ino[i]);
	return i;
}

/* The model starts as dir holds now: every file durable as it is. */
static void model_load(struct model *m, const char *dir)
{
	memset(m, 0, sizeof *m);
	snprintf(m->dir, sizeof m->dir, "%s", dir);
	for (int i = 0; i < MAX_FDS; i++)
		m->fd_ino[i] = -1;
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char path[512];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (de->d_name[0] == '.' || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		int ino = new_inode(m);
		struct inode *f = &m->ino[ino];
		grow(&f->vol, &f->vcap, (uint64_t)st.st_size + 1);
		grow(&f->dur, &f->dcap, (uint64_t)st.st_size + 1);
		int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY, 0);
		ssize_t got = pread(fd, f->vol, (size_t)st.st_size, 0);
		syscall(SYS_close, fd);
		f->vlen = f->dlen = got > 0 ? (uint64_t)got : 0;
		memcpy(f->dur, f->vol, f->vlen);
		name_set(m->vol, &m->nvol, path, ino);
		name_set(m->dur, &m->ndur, path, ino);
	}
	closedir(d);
}

static void vwrite(struct inode *f, uint64_t off, const void *data, uint64_t n)
{
	grow(&f->vol, &f->vcap, off + n);
	if (off > f->vlen)
		memset(f->vol + f->vlen, 0, off - f->vlen);
	if (data)
		memcpy(f->vol + off, data, n);
	else
		memset(f->vol + off, 0, n);
	if (off + n > f->vlen)
		f->vlen = off + n;
}

/* Replay the child's log. Returns the number of entries applied. */
static long model_replay(struct model *m, const char *log_path)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, log_path, O_RDONLY, 0);
	struct stat st;
	fstat(fd, &st);
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
	syscall(SYS_close, fd);
	long applied = 0;
	size_t off = 0;
	while (n > 0 && off + sizeof(struct entry) <= (size_t)n) {
		struct entry e;
		memcpy(&e, buf + off, sizeof e);
		if (e.magic != ENTRY_MAGIC || off + sizeof e + e.len > (size_t)n)
			break;		/* the kill tore the last entry: it never completed */
		const uint8_t *p = buf + off + sizeof e;
		off += sizeof e + e.len;
		applied++;
		switch (e.op) {
		case OP_OPEN: {
			const char *path = (const char *)p;
			int i = name_find(m->vol, m->nvol, path);
			int ino;
			if (e.a & O_DIRECTORY || (i < 0 && strcmp(path, m->dir) == 0)) {
				m->fd_ino[e.fd] = -2;	/* a directory */
				snprintf(m->fd_path[e.fd], sizeof m->fd_path[e.fd], "%s", path);
				break;
			}
			if (i < 0) {
				if (!(e.a & O_CREAT))
					break;
				ino = new_inode(m);
				name_set(m->vol, &m->nvol, path, ino);
			} else {
				ino = m->vol[i].ino;
			}
			if (e.a & O_TRUNC)
				m->ino[ino].vlen = 0;
			m->fd_ino[e.fd] = ino;
			break;
		}
		case OP_CLOSE:
			m->fd_ino[e.fd] = -1;
			break;
		case OP_PWRITE:
			if (m->fd_ino[e.fd] >= 0)
				vwrite(&m->ino[m->fd_ino[e.fd]], e.a, p, e.b);
			break;
		case OP_ZERO:
			if (m->fd_ino[e.fd] >= 0)
				vwrite(&m->ino[m->fd_ino[e.fd]], e.a, NULL, e.b);
			break;
		case OP_TRUNC:
			if (m->fd_ino[e.fd] >= 0) {
				struct inode *f = &m->ino[m->fd_ino[e.fd]];
				grow(&f->vol, &f->vcap, e.a);
				if (e.a > f->vlen)
					memset(f->vol + f->vlen, 0, e.a - f->vlen);
				f->vlen = e.a;
			}
			break;
		case OP_SYNC:
			if (m->fd_ino[e.fd] == -2) {
				/* a directory: its names (creates, renames, unlinks) are durable now */
				const char *dir = m->fd_path[e.fd];
				size_t dl = strlen(dir);
				for (int i = m->ndur - 1; i >= 0; i--)
					if (strncmp(m->dur[i].path, dir, dl) == 0 && m->dur[i].path[dl] == '/' &&
					    !strchr(m->dur[i].path + dl + 1, '/'))
						m->dur[i] = m->dur[--m->ndur];
				for (int i = 0; i < m->nvol; i++)
					if (strncmp(m->vol[i].path, dir, dl) == 0 && m->vol[i].path[dl] == '/' &&
					    !strchr(m->vol[i].path + dl + 1, '/'))
						name_set(m->dur, &m->ndur, m->vol[i].path, m->vol[i].ino);
			} else if (m->fd_ino[e.fd] >= 0) {
				struct inode *f = &m->ino[m->fd_ino[e.fd]];
				grow(&f->dur, &f->dcap, f->vlen + 1);
				memcpy(f->dur, f->vol, f->vlen);
				f->dlen = f->vlen;
			}
			break;
		case OP_RENAME: {
			const char *from = (const char *)p, *to = from + strlen(from) + 1;
			int i = name_find(m->vol, m->nvol, from);
			if (i >= 0) {
				int ino = m->vol[i].ino;
				name_del(m->vol, &m->nvol, from);
				name_set(m->vol, &m->nvol, to, ino);
			}
			break;
		}
		case OP_UNLINK:
			name_del(m->vol, &m->nvol, (const char *)p);
			break;
		}
	}
	free(buf);
	return applied;
}

/*
 * Write what survived the power loss into dir: durable names with their
 * durable bytes, plus (torn) a random share of the unsynced bytes after them.
 */
static void model_restore(struct model *m, const char *dir, int torn, unsigned *seed)
{
	size_t sl = strlen(m->dir);
	for (int i = 0; i < m->ndur; i++) {
		struct inode *f = &m->ino[m->dur[i].ino];
		char path[1024];
		snprintf(path, sizeof path, "%s%s", dir, m->dur[i].path + sl);
		uint64_t len = f->dlen;
		int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (len && pwrite(fd, f->dur, len, 0) != (ssize_t)len)
			t_failures++;
		if (torn && f->vlen > f->dlen && f->dlen <= f->vlen &&
		    memcmp(f->vol, f->dur, f->dlen) == 0) {
			uint64_t extra = (uint64_t)rand_r(seed) % (f->vlen - f->dlen + 1);
			if (extra && pwrite(fd, f->vol + f->dlen, extra, (off_t)f->dlen) != (ssize_t)extra)
				t_failures++;
		}
		syscall(SYS_close, fd);
	}
}

static void model_free(struct model *m)
{
	for (int i = 0; i < m->ninodes; i++) {
		free(m->ino[i].vol);
		free(m->ino[i].dur);
	}
}

/* ------------------------------------------------------------ the child: a writer at full speed */

static int report_fd = -1;

static void on_durable(void *ctx, uint64_t seq, uint64_t now)
{
	(void)ctx;
	(void)now;
	syscall(SYS_write, report_fd, &seq, sizeof seq);	/* the seq may now leave the process */
}

static void child(const char *dir, const char *log_path, int report)
{
	log_fd = (int)syscall(SYS_openat, AT_FDCWD, log_path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
	report_fd = report;
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, getenv("RSX_POWERLOSS_NOSYNC") ? RSX_WAL_NOSYNC : 0);	/* threaded, preallocating */
	cfg.file_size = 32 * 1024;	/* a rotation every ~400 records */
	cfg.ring_size = 64 * 1024;
	cfg.prealloc_rate = 0;
	cfg.on_durable = on_durable;
	if (rsx_wal_open(&w, &cfg) != 0)
		_exit(3);
	for (uint64_t seq = rsx_wal_next_seq(w);; seq++) {
		struct rsx_order_inserted p = t_payload(seq);
		if (rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, NULL) < 0)
			_exit(4);
		if (seq % 512 == 0)
			rsx_wal_wait_durable(w, seq, -1);
	}
}

/* ------------------------------------------------------------ the parent */

/* Every seq 1..next-1 in dir, each with the content the child gave it. Returns next - 1 or -1. */
static int64_t check_stream(const char *dir, uint64_t reported)
{
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	struct rsx_wal_loss loss;
	t_config(&cfg, dir, RSX_WAL_MANUAL);
	cfg.file_size = 32 * 1024;
	cfg.loss = &loss;
	int rc = rsx_wal_open(&w, &cfg);
	if (rc != 0) {
		fprintf(stderr, "powerloss: the writer refused the recovered image: %d (files end at %llu, "
			"published %llu)\n", rc, (unsigned long long)loss.last_seq,
			(unsigned long long)loss.published_seq);
		t_failures++;
		return -1;
	}
	uint64_t last = rsx_wal_next_seq(w) - 1;
	T_EQ(rsx_wal_close(w), 0);
	if (last < reported) {
		fprintf(stderr, "powerloss: seq %llu was reported durable, the disk ends at %llu\n",
			(unsigned long long)reported, (unsigned long long)last);
		t_failures++;
	}
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	uint8_t rec[RSX_RECORD_MAX];
	for (uint64_t q = 1; q <= last; q++) {
		int n = rsx_wal_read_seq(r, q, rec, sizeof rec);
		struct rsx_order_inserted p;
		memcpy(&p, rec + RSX_HEADER_SIZE, sizeof p);
		if (n != 80 || p.seq != q || p.qty.raw != (int64_t)q) {
			fprintf(stderr, "powerloss: seq %llu missing or wrong (%d)\n", (unsigned long long)q, n);
			t_failures++;
			break;
		}
	}
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	return (int64_t)last;
}

static void copy_file(const char *from, const char *to)
{
	int a = (int)syscall(SYS_openat, AT_FDCWD, from, O_RDONLY, 0);
	if (a < 0)
		return;
	int b = (int)syscall(SYS_openat, AT_FDCWD, to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint8_t buf[4096];
	ssize_t n;
	while ((n = read(a, buf, sizeof buf)) > 0)
		if (syscall(SYS_write, b, buf, n) != n)
			t_failures++;
	syscall(SYS_close, a);
	syscall(SYS_close, b);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 12;
	unsigned seed = argc > 2 ? (unsigned)atoi(argv[2]) : (unsigned)getpid();
	char *dir = t_mkdir(), log_path[256];
	snprintf(log_path, sizeof log_path, "%s.log", dir);
	uint64_t durable_total = 0, max_reported = 0;
	fprintf(stderr, "powerloss: %d rounds, seed %u\n", rounds, seed);
	for (int round = 0; round < rounds; round++) {
		int pipefd[2];
		T_EQ(pipe(pipefd), 0);
		static struct model mbuf;	/* ~1 MB: not on the stack */
		model_load(&mbuf, dir);
		pid_t pid = fork();
		if (pid == 0) {
			syscall(SYS_close, pipefd[0]);
			child(dir, log_path, pipefd[1]);
			_exit(0);
		}
		syscall(SYS_close, pipefd[1]);
		/* once it has made something durable (a loaded machine may take a while) ... */
		uint64_t reported = 0, v;
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		if (poll(&pfd, 1, 10000) == 1 && read(pipefd[0], &v, sizeof v) == (ssize_t)sizeof v)
			reported = v;
		/* ... the power fails at a random moment */
		usleep((unsigned)(rand_r(&seed) % 60000));
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		while (read(pipefd[0], &v, sizeof v) == (ssize_t)sizeof v)
			if (v > reported)
				reported = v;
		syscall(SYS_close, pipefd[0]);
		if (WIFEXITED(status)) {
			fprintf(stderr, "powerloss: the child exited by itself (%d)\n", WEXITSTATUS(status));
			t_failures++;
			break;
		}
		long ops = model_replay(&mbuf, log_path);
		int torn = round % 2;
		char *next = t_mkdir();
		model_restore(&mbuf, next, torn, &seed);
		/*
		 * The tip is never synced: after a power loss it is gone (the model's
		 * empty file) or any version the kernel wrote back. Rounds alternate
		 * between none and the latest (the most any stale tip could claim).
		 */
		int tip = round % 4 < 2;
		if (tip) {
			char tip_from[300], tip_to[300];
			snprintf(tip_from, sizeof tip_from, "%s/7.tip", dir);
			snprintf(tip_to, sizeof tip_to, "%s/7.tip", next);
			copy_file(tip_from, tip_to);
		}
		int64_t last = check_stream(next, reported);
		fprintf(stderr, "powerloss round %d: %ld file ops, reported durable %llu, survived %lld%s%s\n",
			round, ops, (unsigned long long)reported, (long long)last, torn ? ", torn tails" : "",
			tip ? ", latest tip" : ", no tip");
		if (last < 0) {
			t_rmdir(next);
			break;
		}
		if (reported > max_reported)
			max_reported = reported;
		durable_total += reported;
		model_free(&mbuf);
		t_rmdir(dir);
		dir = next;		/* the next round starts from what survived */
	}
	T_CHECK(max_reported > 0);	/* the rounds really made records durable */
	unlink(log_path);
	t_rmdir(dir);
	T_DONE();
}
