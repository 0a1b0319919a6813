/*
 * wal_reader.c - read a stream directory by seq (specs/wal.md section 3.2).
 *
 * A set holds the directory's files, each opened on first use, with a
 * sparse seq -> offset index built while records are validated (one
 * checkpoint every CP_STRIDE records). Files are read with pread(), never
 * mapped: a file that shrinks under a reader (a lost tail, an operator's
 * truncate) is a short read and a break (RSX_ELOST), not a SIGBUS that
 * would kill a server for every consumer. Readers navigate by seq, never by
 * file position, so a rotation (rename) or a deletion between two reads
 * cannot make them skip or repeat a record. Files are matched across
 * re-listings by inode: the active file keeps its mapping and its index when
 * it is renamed to its ranged name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "rsx/records.h"
#include "wal_internal.h"

#define CP_STRIDE 64
#define SCAN_CHUNK 1024		/* entries per scan call while indexing */
#define INDEX_BUF (1u << 20)	/* bytes read per pread while indexing */
#define RA_BYTES (64u << 10)	/* read-ahead window for small reads (read_seq, CMP retransmits) */

struct cp {
	uint64_t seq;
	uint64_t off;
};

struct wal_file {
	char name[WAL_NAME_MAX + 1];
	int kind;
	uint64_t first;		/* first seq (name or first record); 0 = empty file */
	uint64_t last;		/* ROTATED: from the name */
	dev_t dev;
	ino_t ino;
	int listed;		/* present in the latest listing */
	uint64_t final_size;	/* size once known to be complete (0 = not yet) */
	int fd;
	/* index: records in [0, indexed_end) are valid and contiguous */
	struct cp *cp;
	size_t ncp, capcp;
	uint64_t indexed_end;
	uint64_t indexed_next;	/* seq after the last indexed record */
	uint64_t indexed_count;
	struct wal_file *next_alloc;	/* every file ever seen, freed at close */
};

struct rsx_wal_set {
	char dir[WAL_PATH_MAX];
	uint32_t stream;
	struct wal_file **files;	/* listed files, sorted by first seq */
	size_t n, cap;
	struct wal_file *all;
	int tip_fd;
	const struct rsx_wal_tip *tip;
	struct rsx_wal_tip tipc;	/* last consistent copy */
	int tip_ok;
	uint64_t listed_active_first;	/* tip.active_first_seq at the last listing */
	int readers;
	uint8_t *buf;			/* INDEX_BUF bytes for indexing and header walks */
	uint8_t *ra;			/* RA_BYTES of one file, below its bound when read */
	struct wal_file *ra_file;
	uint64_t ra_off, ra_len;
};

struct rsx_wal_reader {
	struct rsx_wal_set *s;
	struct wal_file *cur;	/* NULL: not positioned yet */
	uint64_t off;
	uint64_t next_seq;	/* next seq expected at off (0: oldest, not positioned) */
	uint64_t target;	/* skip records below this seq (a seek beyond the tip) */
	int has_brk;
	struct rsx_wal_break brk;
	struct rsx_wal_entry ent[SCAN_CHUNK];
};

int rsx_wal_set_refresh(struct rsx_wal_set *s);

/* ------------------------------------------------------------ tip */

static void tip_refresh(struct rsx_wal_set *s)
{
	if (!s->tip) {
		char name[64], path[WAL_PATH_MAX];
		wal_tip_name(name, sizeof name, s->stream);
		if (s->stream == 0 || wal_path(path, s->dir, name) < 0)
			return;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(struct rsx_wal_tip)) {
			close(fd);
			return;
		}
		void *p = mmap(NULL, sizeof(struct rsx_wal_tip), PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			close(fd);
			return;
		}
		s->tip_fd = fd;
		s->tip = p;
	}
	struct rsx_wal_tip t;
	if (wal_tip_copy(s->tip, &t) == 0 && t.stream_id == s->stream) {
		s->tipc = t;
		s->tip_ok = 1;
	}
}

/* ------------------------------------------------------------ files */

static int64_t file_pread(const struct wal_file *f, void *buf, uint64_t off, uint64_t n);

static void file_free(struct wal_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->cp);
	free(f);
}

/* Open f if needed, checking it is still the inode we listed. Returns 0 or -errno. */
static int file_open_once(struct rsx_wal_set *s, struct wal_file *f)
{
	if (f->fd >= 0)
		return 0;
	char path[WAL_PATH_MAX];
	int rc = wal_path(path, s->dir, f->name);
	if (rc < 0)
		return rc;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(f->fd, &st) < 0 || st.st_ino != f->ino || st.st_dev != f->dev) {
		/* another file under that name now: ours was renamed or deleted */
		close(f->fd);
		f->fd = -1;
		return -ENOENT;
	}
	return 0;
}

/*
 * Open f; if its name is gone, re-list once: a rotation renames the active
 * file (same inode, new name), a deletion removes it (-ENOENT).
 */
static int file_open(struct rsx_wal_set *s, struct wal_file *f)
{
	int rc = file_open_once(s, f);
	if (rc != -ENOENT)
		return rc;
	rc = rsx_wal_set_refresh(s);
	if (rc < 0)
		return rc;
	return f->listed ? file_open_once(s, f) : -ENOENT;
}

/*
 * Read up to n bytes at off. Returns the bytes read: fewer than n only at the
 * end of the file (it is shorter than asked: it shrank), or -errno.
 */
static int64_t file_pread(const struct wal_file *f, void *buf, uint64_t off, uint64_t n)
{
	uint64_t done = 0;
	while (done < n) {
		ssize_t r = pread(f->fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (uint64_t)r;
	}
	return (int64_t)done;
}

/*
 * Read like file_pread, through a read-ahead window for small reads: one
 * pread serves the next records of a sequential read_seq (the CMP deep
 * retransmit path). The window only ever holds bytes below `limit` (the
 * file's bound when it was filled), which never change.
 */
static int64_t file_read(struct rsx_wal_set *s, struct wal_file *f, void *buf, uint64_t off,
			 uint64_t n, uint64_t limit)
{
	if (n > RA_BYTES / 4)
		return file_pread(f, buf, off, n);
	if (s->ra_file != f || off < s->ra_off || off + n > s->ra_off + s->ra_len) {
		uint64_t want = limit > off ? limit - off : 0;
		if (want > RA_BYTES)
			want = RA_BYTES;
		if (want < n)
			want = n;
		int64_t got = file_pread(f, s->ra, off, want);
		if (got < 0) {
			s->ra_file = NULL;
			return got;
		}
		s->ra_file = f;
		s->ra_off = off;
		s->ra_len = (uint64_t)got;
	}
	uint64_t have = s->ra_off + s->ra_len - off;
	if (have > n)
		have = n;
	memcpy(buf, s->ra + (off - s->ra_off), have);
	return (int64_t)have;
}

static uint64_t file_size_now(struct wal_file *f)
{
	struct stat st;
	if (f->final_size)
		return f->final_size;
	if (f->fd < 0 || fstat(f->fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_size;
}

/* Size of a file that can no longer change (rotated): one fstat, then cached. */
static uint64_t file_final_size(struct wal_file *f)
{
	uint64_t size = file_size_now(f);
	if (f->fd >= 0)
		f->final_size = size;
	return size;
}

/* Whether the writer's tip describes this (active) file: its durable size is then the bound. */
static int tip_covers(const struct rsx_wal_set *s, const struct wal_file *f)
{
	return s->tip_ok && f->kind == WAL_ACTIVE && s->tipc.active_first_seq == f->first;
}

/*
 * How far f may be read now. *complete = 1 when nothing will ever be added
 * to f (a rotated file, an active file that has been rotated since, an
 * archive file followed by a newer one). With a tip, an active file is never
 * read past the durable size the tip publishes; an active file newer than
 * the tip (a rotation the writer has not published yet) is not read at all.
 */
static int64_t file_bound(struct rsx_wal_set *s, struct wal_file *f, int newest, int *complete)
{
	*complete = 0;
	int rc = file_open(s, f);
	if (rc < 0)
		return rc;
	if (f->kind == WAL_ROTATED) {
		*complete = 1;
		return (int64_t)file_final_size(f);
	}
	if (f->kind == WAL_ACTIVE && s->tip_ok) {
		if (s->tipc.active_first_seq > f->first) {
			*complete = 1;	/* rotated: truncated to its data and synced before the tip moved */
			return (int64_t)file_final_size(f);
		}
		if (s->tipc.active_first_seq == f->first)
			return (int64_t)s->tipc.active_durable_bytes;
		return 0;
	}
	if (!newest)
		*complete = 1;
	return (int64_t)file_size_now(f);
}

static int cp_push(struct wal_file *f, uint64_t seq, uint64_t off)
{
	if (f->ncp == f->capcp) {
		size_t cap = f->capcp ? 2 * f->capcp : 64;
		struct cp *v = realloc(f->cp, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		f->cp = v;
		f->capcp = cap;
	}
	f->cp[f->ncp].seq = seq;
	f->cp[f->ncp].off = off;
	f->ncp++;
	return 0;
}

/* Record entries scanned at file offset base into the sparse index. */
static void index_add(struct wal_file *f, uint64_t base, const struct rsx_wal_entry *e, size_t n,
		      uint64_t end_off, uint64_t next_seq)
{
	if (base != f->indexed_end)
		return;		/* only ever extend the contiguous prefix */
	for (size_t i = 0; i < n; i++) {
		if ((f->indexed_count + i) % CP_STRIDE == 0)
			cp_push(f, e[i].seq, base + e[i].offset);
	}
	f->indexed_count += n;
	f->indexed_end = end_off;
	f->indexed_next = next_seq;
}

/* ------------------------------------------------------------ listing */

static int cmp_files(const void *pa, const void *pb)
{
	const struct wal_file *a = *(struct wal_file *const *)pa, *b = *(struct wal_file *const *)pb;
	/* empty files (first 0) last: they can only be the newest */
	uint64_t fa = a->first ? a->first : UINT64_MAX, fb = b->first ? b->first : UINT64_MAX;
	if (fa != fb)
		return fa < fb ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind - b->kind;
	return strcmp(a->name, b->name);
}

/* First seq of a file whose name does not say it: read its first record. */
static uint64_t read_first_seq(const char *path)
{
	uint8_t head[RSX_HEADER_SIZE + 8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = pread(fd, head, sizeof head, 0);
	close(fd);
	if (n != (ssize_t)sizeof head || head[0] != RSX_RECORD_VERSION)
		return 0;
	uint64_t seq;
	memcpy(&seq, head + RSX_HEADER_SIZE, 8);
	return seq;
}

int rsx_wal_set_refresh(struct rsx_wal_set *s)
{
	struct wal_name *v = NULL;
	uint32_t stream = s->stream;
	int n = wal_list(s->dir, &stream, &v);
	if (n < 0)
		return n;
	if (s->stream == 0)
		s->stream = stream;
	tip_refresh(s);
	for (struct wal_file *f = s->all; f; f = f->next_alloc)
		f->listed = 0;
	size_t count = 0;
	struct wal_file **list = malloc(((size_t)n + 1) * sizeof *list);
	if (!list) {
		free(v);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		char path[WAL_PATH_MAX];
		struct stat st;
		if (wal_path(path, s->dir, v[i].name) < 0 || stat(path, &st) < 0)
			continue;	/* deleted since readdir */
		struct wal_file *f;
		for (f = s->all; f; f = f->next_alloc)
			if (f->ino == st.st_ino && f->dev == st.st_dev && !f->listed)
				break;
		if (!f) {
			f = calloc(1, sizeof *f);
			if (!f)
				continue;
			f->fd = -1;
			f->dev = st.st_dev;
			f->ino = st.st_ino;
			f->next_alloc = s->all;
			s->all = f;
		}
		memcpy(f->name, v[i].name, sizeof f->name);
		f->kind = v[i].kind;
		f->listed = 1;
		if (v[i].kind == WAL_OTHER) {
			if (f->first == 0)
				f->first = read_first_seq(path);
		} else {
			f->first = v[i].first;
			f->last = v[i].last;
		}
		if (f->indexed_end == 0 && f->indexed_next == 0)
			f->indexed_next = f->first;
		list[count++] = f;
	}
	free(v);
	qsort(list, count, sizeof *list, cmp_files);
	free(s->files);
	s->files = list;
	s->n = count;
	s->listed_active_first = s->tip_ok ? s->tipc.active_first_seq : 0;
	return 0;
}

int rsx_wal_set_open(struct rsx_wal_set **out, const char *dir, uint32_t stream_id)
{
	if (!dir || strlen(dir) >= WAL_PATH_MAX - 300)
		return RSX_EINVALID;
	struct stat st;
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	struct rsx_wal_set *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	snprintf(s->dir, sizeof s->dir, "%s", dir);
	s->stream = stream_id;
	s->tip_fd = -1;
	if (!(s->buf = malloc(INDEX_BUF)) || !(s->ra = malloc(RA_BYTES))) {
		free(s->buf);
		free(s);
		return -ENOMEM;
	}
	int rc = rsx_wal_set_refresh(s);
	if (rc < 0) {
		rsx_wal_set_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void rsx_wal_set_close(struct rsx_wal_set *s)
{
	if (!s)
		return;
	struct wal_file *f = s->all;
	while (f) {
		struct wal_file *next = f->next_alloc;
		file_free(f);
		f = next;
	}
	free(s->files);
	free(s->buf);
	free(s->ra);
	if (s->tip)
		munmap((void *)s->tip, sizeof(struct rsx_wal_tip));
	if (s->tip_fd >= 0)
		close(s->tip_fd);
	free(s);
}

const char *rsx_wal_set_file(struct rsx_wal_set *s, uint32_t i, uint64_t *first_seq)
{
	if (i >= s->n)
		return NULL;
	if (first_seq)
		*first_seq = s->files[i]->first;
	return s->files[i]->name;
}

/* ------------------------------------------------------------ indexing */

/*
 * Validate and index f up to its bound (or until `until_seq` is indexed).
 * Returns 0, or a break error with *brk_off / *found set (the index then ends
 * at the break).
 */
static int index_to(struct rsx_wal_set *s, struct wal_file *f, uint64_t bound, uint64_t until_seq,
		    struct rsx_wal_entry *ent, int *stop_out, int32_t *err_out, uint64_t *found)
{
	int rc = file_open(s, f);
	if (rc < 0)
		return rc;
	*stop_out = RSX_WAL_STOP_END;
	while (f->indexed_end < bound && (until_seq == 0 || f->indexed_next <= until_seq)) {
		struct rsx_wal_scan sc = { .next_seq = f->indexed_next, .stream_id = s->stream,
					   .flags = RSX_WAL_SCAN_ZEROS };
		uint64_t base = f->indexed_end;
		uint64_t want = bound - base < INDEX_BUF ? bound - base : INDEX_BUF;
		int64_t got = file_pread(f, s->buf, base, want);
		if (got < 0)
			return (int)got;
		rsx_wal_scan(s->buf, (size_t)got, ent, SCAN_CHUNK, &sc);
		index_add(f, base, ent, sc.count, base + sc.end, sc.next_seq);
		if (sc.stop == RSX_WAL_STOP_FULL)
			continue;
		if ((uint64_t)got < want && (sc.stop == RSX_WAL_STOP_END || sc.stop == RSX_WAL_STOP_PARTIAL)) {
			*stop_out = RSX_WAL_STOP_BAD;	/* the file ends before its bound: it shrank */
			*err_out = RSX_ELOST;
			*found = 0;
			break;
		}
		if ((sc.stop == RSX_WAL_STOP_END || sc.stop == RSX_WAL_STOP_PARTIAL) && base + got < bound &&
		    sc.end > 0)
			continue;	/* a chunk boundary, not the bound: read on */
		if (sc.stop != RSX_WAL_STOP_END || base + got >= bound) {
			*stop_out = sc.stop;
			*err_out = sc.error;
			*found = sc.found_seq;
			break;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ reader */

int rsx_wal_reader_open(struct rsx_wal_reader **out, struct rsx_wal_set *s)
{
	struct rsx_wal_reader *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->s = s;
	s->readers++;
	*out = r;
	return 0;
}

void rsx_wal_reader_close(struct rsx_wal_reader *r)
{
	if (!r)
		return;
	r->s->readers--;
	free(r);
}

uint64_t rsx_wal_reader_next_seq(const struct rsx_wal_reader *r)
{
	if (r->target > r->next_seq)
		return r->target;
	return r->next_seq;
}

int rsx_wal_reader_break(const struct rsx_wal_reader *r, struct rsx_wal_break *out)
{
	if (!r->has_brk)
		return -ENOENT;
	*out = r->brk;
	return 0;
}

static int set_break(struct rsx_wal_reader *r, struct wal_file *f, uint64_t off, int32_t error,
		     uint64_t found, int tail)
{
	r->has_brk = 1;
	memset(&r->brk, 0, sizeof r->brk);
	r->brk.offset = off;
	r->brk.last_seq = r->next_seq ? r->next_seq - 1 : 0;
	r->brk.found_seq = found;
	r->brk.error = error;
	r->brk.tail = (uint32_t)tail;
	if (f)
		memcpy(r->brk.file, f->name, sizeof r->brk.file);
	return error;
}

static int is_newest(const struct rsx_wal_set *s, const struct wal_file *f)
{
	return s->n > 0 && s->files[s->n - 1] == f;
}

/* The listed file holding seq (largest first <= seq), or NULL. */
static struct wal_file *file_for(struct rsx_wal_set *s, uint64_t seq)
{
	struct wal_file *best = NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct wal_file *f = s->files[i];
		if (f->first != 0 && f->first <= seq)
			best = f;
	}
	return best;
}

static uint64_t oldest_seq(const struct rsx_wal_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->files[i]->first)
			return s->files[i]->first;
	return 0;
}

/*
 * Place the reader at the first record >= seq in the file that holds it,
 * using the sparse index. Records between the checkpoint and seq are
 * validated while indexing.
 */
static int position(struct rsx_wal_reader *r, uint64_t seq)
{
	struct rsx_wal_set *s = r->s;
	struct wal_file *f = file_for(s, seq);
	if (!f) {
		if (oldest_seq(s) != 0 && seq < oldest_seq(s))
			return RSX_EGONE;
		r->cur = NULL;	/* nothing yet: a later refresh finds the file */
		return 0;
	}
	int complete;
	int64_t b = file_bound(s, f, is_newest(s, f), &complete);
	if (b < 0)
		return b == -ENOENT ? RSX_EGONE : (int)b;
	uint64_t bound = (uint64_t)b;
	if (f->indexed_next <= seq && f->indexed_end < bound) {
		int stop;
		int32_t err = 0;
		uint64_t found;
		int rc = index_to(s, f, bound, seq, r->ent, &stop, &err, &found);
		if (rc == -ENOENT)
			return RSX_EGONE;	/* deleted under us: retention moved past it */
		if (rc < 0)
			return rc;
	}
	/* the last checkpoint at or below seq */
	uint64_t off = 0, at = f->first;
	size_t lo = 0, hi = f->ncp;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (f->cp[mid].seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0) {
		off = f->cp[lo - 1].off;
		at = f->cp[lo - 1].seq;
	}
	/* walk headers (validated while indexing) to seq, or to the indexed end: < CP_STRIDE records */
	if (at < seq && off < f->indexed_end) {
		uint64_t want = f->indexed_end - off;
		if (want > (uint64_t)CP_STRIDE * RSX_RECORD_MAX)
			want = (uint64_t)CP_STRIDE * RSX_RECORD_MAX;
		int64_t got = file_pread(f, s->buf, off, want);
		if (got < 0)
			return (int)got;
		uint64_t walked = 0;
		while (at < seq && walked + RSX_HEADER_SIZE <= (uint64_t)got) {
			uint16_t len;
			memcpy(&len, s->buf + walked + 4, 2);
			walked += RSX_HEADER_SIZE + len;
			at++;
		}
		if (at < seq && off + walked < f->indexed_end && (uint64_t)got < want) {
			r->next_seq = at;	/* indexed bytes are gone: the file shrank */
			return set_break(r, f, off + walked, RSX_ELOST, 0, 0);
		}
		off += walked;
	}
	r->cur = f;
	r->off = off;
	r->next_seq = at;
	r->target = seq;
	return 0;
}

int rsx_wal_reader_seek(struct rsx_wal_reader *r, uint64_t seq)
{
	struct rsx_wal_set *s = r->s;
	r->has_brk = 0;
	tip_refresh(s);
	if (s->n == 0 || (s->tip_ok && s->tipc.active_first_seq != s->listed_active_first))
		rsx_wal_set_refresh(s);
	if (seq == 0) {
		seq = oldest_seq(s);
		if (seq == 0) {
			r->cur = NULL;
			r->next_seq = 0;
			r->target = 0;
			return 0;
		}
	}
	int rc = position(r, seq);
	if (rc == RSX_EGONE) {
		rsx_wal_set_refresh(s);
		if (seq >= oldest_seq(s))
			rc = position(r, seq);
	}
	if (rc < 0)
		return rc;
	if (!r->cur) {
		r->next_seq = seq;
		r->target = seq;
	}
	return 0;
}

/* Move to the file that starts at r->next_seq. Returns 1 moved, 0 not yet, < 0 a gap. */
static int next_file(struct rsx_wal_reader *r)
{
	struct rsx_wal_set *s = r->s;
	for (int pass = 0; pass < 2; pass++) {
		struct wal_file *gap = NULL;
		for (size_t i = 0; i < s->n; i++) {
			struct wal_file *f = s->files[i];
			if (f == r->cur || f->first == 0)
				continue;
			if (f->first == r->next_seq) {
				r->cur = f;
				r->off = 0;
				return 1;
			}
			if (f->first > r->next_seq && (!gap || f->first < gap->first))
				gap = f;
		}
		if (pass == 0) {
			rsx_wal_set_refresh(s);
			continue;
		}
		if (gap)
			return set_break(r, gap, 0, RSX_ESEQ, gap->first, 0);
	}
	return 0;
}

int64_t rsx_wal_reader_read(struct rsx_wal_reader *r, void *buf, size_t cap,
			    struct rsx_wal_entry *entries, size_t ecap, size_t *nbytes)
{
	struct rsx_wal_set *s = r->s;
	uint8_t *out = buf;
	size_t used = 0, count = 0;
	*nbytes = 0;
	if (r->has_brk)
		return r->brk.error;
	tip_refresh(s);
	if (s->tip_ok && s->tipc.active_first_seq != s->listed_active_first)
		rsx_wal_set_refresh(s);
	if (!r->cur) {
		if (s->n == 0 || r->next_seq == 0 || !file_for(s, r->next_seq))
			rsx_wal_set_refresh(s);
		uint64_t want = r->target ? r->target : r->next_seq;
		if (want == 0)
			want = oldest_seq(s);
		if (want == 0 || !file_for(s, want))
			return 0;	/* nothing to read yet */
		int rc = position(r, want);
		if (rc < 0)
			return rc;
		if (!r->cur)
			return 0;
	}
	while (count < ecap && used < cap) {
		struct wal_file *f = r->cur;
		int complete, newest = is_newest(s, f);
		int64_t b = file_bound(s, f, newest, &complete);
		int rc = b < 0 ? (int)b : 0;
		uint64_t bound = b < 0 ? 0 : (uint64_t)b;
		if (rc == -ENOENT)
			return count ? (int64_t)count : RSX_EGONE;
		if (rc < 0)
			return count ? (int64_t)count : rc;
		if (r->off < bound) {
			uint64_t avail = bound - r->off;
			uint64_t room = cap - used;
			uint64_t n = avail < room ? avail : room;
			size_t want = ecap - count < SCAN_CHUNK ? ecap - count : SCAN_CHUNK;
			if (n > (uint64_t)want * RSX_RECORD_MAX)
				n = (uint64_t)want * RSX_RECORD_MAX;	/* no more than one scan can take */
			/* read straight into the caller's buffer, then check what arrived */
			int64_t got = file_read(s, f, out + used, r->off, n, bound);
			if (got < 0)
				return count ? (int64_t)count : (int)got;
			struct rsx_wal_scan sc = { .next_seq = r->next_seq, .stream_id = s->stream,
						   .flags = RSX_WAL_SCAN_ZEROS };
			rsx_wal_scan(out + used, (size_t)got, r->ent, want, &sc);
			index_add(f, r->off, r->ent, sc.count, r->off + sc.end, sc.next_seq);
			/* keep the records >= target, moved to the front of what was read */
			size_t skip = 0;
			while (skip < sc.count && r->ent[skip].seq < r->target)
				skip++;
			if (skip < sc.count) {
				uint64_t from = r->ent[skip].offset;
				uint64_t len = sc.end - from;
				if (from)
					memmove(out + used, out + used + from, len);
				for (size_t i = skip; i < sc.count; i++) {
					entries[count] = r->ent[i];
					entries[count].offset = used + (r->ent[i].offset - from);
					count++;
				}
				used += len;
			}
			r->off += sc.end;
			if (sc.count)
				r->next_seq = sc.next_seq;
			if (sc.stop == RSX_WAL_STOP_BAD) {
				int tail = newest && !tip_covers(s, f);
				set_break(r, f, r->off, sc.error, sc.found_seq, tail);
				break;
			}
			if ((uint64_t)got < n && (sc.stop == RSX_WAL_STOP_END || sc.stop == RSX_WAL_STOP_PARTIAL)) {
				/* the file ends before what it held when we listed it, or before its durable size */
				set_break(r, f, r->off, RSX_ELOST, 0, 0);
				break;
			}
			if (sc.stop == RSX_WAL_STOP_PARTIAL && n < avail) {
				if (n < room && sc.end > 0)
					continue;	/* a record cut by the read size: read on */
				break;	/* the caller's buffer is full */
			}
			if (sc.stop == RSX_WAL_STOP_FULL)
				continue;
			if (sc.stop == RSX_WAL_STOP_PARTIAL || sc.stop == RSX_WAL_STOP_ZEROS) {
				if (complete || tip_covers(s, f)) {
					/* a rotated or durable region must hold whole records only */
					set_break(r, f, r->off, sc.stop == RSX_WAL_STOP_PARTIAL ? RSX_ESHORT
						  : RSX_EVERSION, 0, 0);
				}
				/* else: the newest file of an archive being appended: not yet */
				break;
			}
			continue;	/* STOP_END: reached the bound */
		}
		if (!complete)
			break;		/* caught up with the durable tip */
		rc = next_file(r);
		if (rc < 0)
			break;
		if (rc == 0)
			break;
	}
	*nbytes = used;
	if (count == 0 && r->has_brk)
		return r->brk.error;
	return (int64_t)count;
}

int rsx_wal_read_seq(struct rsx_wal_reader *r, uint64_t seq, void *out, size_t cap)
{
	if (seq == 0)
		return RSX_EINVALID;
	if (r->has_brk || !r->cur || rsx_wal_reader_next_seq(r) != seq) {
		int rc = rsx_wal_reader_seek(r, seq);
		if (rc < 0)
			return rc;
	}
	struct rsx_wal_entry e;
	size_t n;
	int64_t got = rsx_wal_reader_read(r, out, cap, &e, 1, &n);
	if (got < 0)
		return (int)got;
	if (got == 0) {
		if (cap < RSX_RECORD_MAX && r->cur) {
			/* maybe the record did not fit */
			struct rsx_wal_set *s = r->s;
			int complete;
			int64_t bound = file_bound(s, r->cur, is_newest(s, r->cur), &complete);
			uint8_t head[RSX_HEADER_SIZE];
			if (bound >= 0 && r->off + RSX_HEADER_SIZE <= (uint64_t)bound &&
			    file_pread(r->cur, head, r->off, sizeof head) == (int64_t)sizeof head) {
				uint16_t len;
				memcpy(&len, head + 4, 2);
				if (RSX_HEADER_SIZE + (size_t)len > cap)
					return RSX_ESHORT;
			}
		}
		return -EAGAIN;
	}
	return (int)n;
}

int rsx_wal_set_info(struct rsx_wal_set *s, struct rsx_wal_set_info *o)
{
	memset(o, 0, sizeof *o);
	tip_refresh(s);
	if (s->tip_ok && s->tipc.active_first_seq != s->listed_active_first)
		rsx_wal_set_refresh(s);
	o->stream_id = s->stream;
	o->nfiles = (uint32_t)s->n;
	o->oldest_seq = oldest_seq(s);
	o->has_tip = s->tip_ok;
	o->writer_alive = s->stream ? wal_lock_held(s->dir, s->stream) : 0;
	if (s->tip_ok) {
		o->writer_state = s->tipc.state;
		o->writer_error = s->tipc.error;
		o->writer_pid = s->tipc.writer_pid;
	}
	if (s->tip_ok && s->n > 0 && s->files[s->n - 1]->kind == WAL_ACTIVE &&
	    s->tipc.active_first_seq == s->files[s->n - 1]->first) {
		o->durable_seq = s->tipc.durable_seq;
	} else if (s->n > 0) {
		/* no writer tip for the newest file: its valid records are the tip */
		struct wal_file *f = s->files[s->n - 1];
		struct rsx_wal_entry *ent = malloc(SCAN_CHUNK * sizeof *ent);
		if (ent) {
			int complete, stop;
			int32_t err;
			uint64_t found;
			int64_t bound = file_bound(s, f, 1, &complete);
			if (bound >= 0 && index_to(s, f, (uint64_t)bound, 0, ent, &stop, &err, &found) == 0 &&
			    f->indexed_next > 0)
				o->durable_seq = f->indexed_next - 1;
			free(ent);
		}
		if (o->durable_seq == 0 && f->first > 1)
			o->durable_seq = f->first - 1;
	}
	o->next_seq = o->durable_seq + 1;
	return 0;
}

uint64_t rsx_wal_set_tip_seq(struct rsx_wal_set *s)
{
	tip_refresh(s);
	return s->tip_ok ? s->tipc.durable_seq : 0;
}
