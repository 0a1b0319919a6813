/*
 * store_sqlite.c - a SQLite connection for the history store's writer, the
 * SQLite API resolved at run time (rsx/sqlite.h).
 *
 * The few entry points used are declared here from SQLite's stable C ABI, so
 * the build needs no sqlite3.h. They are looked up once, from the libsqlite3
 * already in the process (RSX_SQLITE_LOADED) or by loading it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/sqlite.h"

/* SQLite's constants we use (sqlite3.h, stable since 3.x) */
#define SQ_OK		0
#define SQ_ROW		100
#define SQ_DONE		101
#define SQ_OPEN_READONLY	0x00000001
#define SQ_OPEN_READWRITE	0x00000002
#define SQ_OPEN_CREATE		0x00000004
#define SQ_OPEN_NOMUTEX		0x00008000
#define SQ_STATIC	((void (*)(void *))0)

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

static struct {
	int (*open_v2)(const char *, sqlite3 **, int, const char *);
	int (*close_v2)(sqlite3 *);
	int (*extended_errcode)(sqlite3 *);
	const char *(*errmsg)(sqlite3 *);
	int (*exec)(sqlite3 *, const char *, void *, void *, char **);
	int (*busy_timeout)(sqlite3 *, int);
	int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
	int (*finalize)(sqlite3_stmt *);
	int (*bind_parameter_count)(sqlite3_stmt *);
	int (*bind_int64)(sqlite3_stmt *, int, int64_t);
	int (*bind_double)(sqlite3_stmt *, int, double);
	int (*bind_blob)(sqlite3_stmt *, int, const void *, int, void (*)(void *));
	int (*bind_text)(sqlite3_stmt *, int, const char *, int, void (*)(void *));
	int (*bind_null)(sqlite3_stmt *, int);
	int (*step)(sqlite3_stmt *);
	int (*reset)(sqlite3_stmt *);
	int (*column_count)(sqlite3_stmt *);
	int (*column_type)(sqlite3_stmt *, int);
	int64_t (*column_int64)(sqlite3_stmt *, int);
	double (*column_double)(sqlite3_stmt *, int);
	const void *(*column_blob)(sqlite3_stmt *, int);
	int (*column_bytes)(sqlite3_stmt *, int);
} sq;

static pthread_mutex_t sq_lock = PTHREAD_MUTEX_INITIALIZER;
static int sq_ready;		/* 1 resolved, 0 not yet */

#define SYM(field, name) { (void **)&sq.field, name }

static int resolve(unsigned flags)
{
	static const struct { void **slot; const char *name; } syms[] = {
		SYM(open_v2, "sqlite3_open_v2"), SYM(close_v2, "sqlite3_close_v2"),
		SYM(extended_errcode, "sqlite3_extended_errcode"), SYM(errmsg, "sqlite3_errmsg"),
		SYM(exec, "sqlite3_exec"), SYM(busy_timeout, "sqlite3_busy_timeout"),
		SYM(prepare_v2, "sqlite3_prepare_v2"), SYM(finalize, "sqlite3_finalize"),
		SYM(bind_parameter_count, "sqlite3_bind_parameter_count"), SYM(bind_int64, "sqlite3_bind_int64"),
		SYM(bind_double, "sqlite3_bind_double"), SYM(bind_blob, "sqlite3_bind_blob"),
		SYM(bind_text, "sqlite3_bind_text"), SYM(bind_null, "sqlite3_bind_null"),
		SYM(step, "sqlite3_step"), SYM(reset, "sqlite3_reset"),
		SYM(column_count, "sqlite3_column_count"), SYM(column_type, "sqlite3_column_type"),
		SYM(column_int64, "sqlite3_column_int64"), SYM(column_double, "sqlite3_column_double"),
		SYM(column_blob, "sqlite3_column_blob"), SYM(column_bytes, "sqlite3_column_bytes"),
	};
	int rc = 0;
	pthread_mutex_lock(&sq_lock);
	if (!sq_ready) {
		void *lib = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL |
				   ((flags & RSX_SQLITE_LOADED) ? RTLD_NOLOAD : 0));
		if (!lib) {
			rc = -ENOENT;
			goto out;
		}
		for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
			*syms[i].slot = dlsym(lib, syms[i].name);
			if (!*syms[i].slot) {
				rc = -ENOENT;	/* a libsqlite3 too old for us: the handle stays open, unused */
				goto out;
			}
		}
		sq_ready = 1;	/* the library stays loaded for the life of the process */
	}
out:
	pthread_mutex_unlock(&sq_lock);
	return rc;
}

struct rsx_sqlite {
	sqlite3 *db;
	int errcode;
	char errmsg[256];
};

struct rsx_sqlite_stmt {
	sqlite3_stmt *st;
	struct rsx_sqlite *c;
};

/* Remember SQLite's error: the code and message are read later, from another call. */
static int fail(struct rsx_sqlite *c, int code)
{
	const char *msg = c->db ? sq.errmsg(c->db) : "out of memory";
	c->errcode = c->db ? sq.extended_errcode(c->db) : code;
	strncpy(c->errmsg, msg ? msg : "", sizeof(c->errmsg) - 1);
	c->errmsg[sizeof(c->errmsg) - 1] = 0;
	return -EIO;
}

int rsx_sqlite_open(const char *path, unsigned flags, int busy_ms, struct rsx_sqlite **out)
{
	if (!path || !out || busy_ms < 0)
		return -EINVAL;
	int rc = resolve(flags);
	if (rc < 0)
		return rc;
	struct rsx_sqlite *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* the connection is confined to one thread: no per-connection mutex */
	int mode = (flags & RSX_SQLITE_READONLY) ? SQ_OPEN_READONLY : SQ_OPEN_READWRITE | SQ_OPEN_CREATE;
	rc = sq.open_v2(path, &c->db, mode | SQ_OPEN_NOMUTEX, NULL);
	if (rc != SQ_OK) {
		fail(c, rc);
		*out = c;	/* closed by the caller after reading the error */
		return -EIO;
	}
	sq.busy_timeout(c->db, busy_ms);
	*out = c;
	return 0;
}

void rsx_sqlite_close(struct rsx_sqlite *c)
{
	if (!c)
		return;
	if (c->db)
		sq.close_v2(c->db);	/* v2: finishes once the last statement is finalized */
	free(c);
}

int rsx_sqlite_errcode(const struct rsx_sqlite *c)
{
	return c->errcode;
}

const char *rsx_sqlite_errmsg(const struct rsx_sqlite *c)
{
	return c->errmsg;
}

int rsx_sqlite_exec(struct rsx_sqlite *c, const char *sql)
{
	return sq.exec(c->db, sql, NULL, NULL, NULL) == SQ_OK ? 0 : fail(c, 0);
}

int rsx_sqlite_prepare(struct rsx_sqlite *c, const char *sql, struct rsx_sqlite_stmt **out)
{
	struct rsx_sqlite_stmt *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->c = c;
	int rc = sq.prepare_v2(c->db, sql, -1, &s->st, NULL);
	if (rc != SQ_OK || !s->st) {
		rc = rc != SQ_OK ? fail(c, rc) : -EINVAL;	/* -EINVAL: no statement (empty, a comment) */
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void rsx_sqlite_finalize(struct rsx_sqlite_stmt *s)
{
	if (!s)
		return;
	sq.finalize(s->st);
	free(s);
}

int rsx_sqlite_params(const struct rsx_sqlite_stmt *s)
{
	return sq.bind_parameter_count(s->st);
}

static int bound(struct rsx_sqlite_stmt *s, int rc)
{
	return rc == SQ_OK ? 0 : fail(s->c, rc);
}

int rsx_sqlite_bind_i64(struct rsx_sqlite_stmt *s, int i, int64_t v)
{
	return bound(s, sq.bind_int64(s->st, i, v));
}

int rsx_sqlite_bind_f64(struct rsx_sqlite_stmt *s, int i, double v)
{
	return bound(s, sq.bind_double(s->st, i, v));
}

/* blobs and texts are copied by SQLite only when it keeps them: bound until the next step or reset */
int rsx_sqlite_bind_blob(struct rsx_sqlite_stmt *s, int i, const void *p, size_t n)
{
	if (n > INT32_MAX)
		return -EINVAL;
	return bound(s, sq.bind_blob(s->st, i, n ? p : "", (int)n, SQ_STATIC));
}

int rsx_sqlite_bind_text(struct rsx_sqlite_stmt *s, int i, const char *p, size_t n)
{
	if (n > INT32_MAX)
		return -EINVAL;
	return bound(s, sq.bind_text(s->st, i, n ? p : "", (int)n, SQ_STATIC));
}

int rsx_sqlite_bind_null(struct rsx_sqlite_stmt *s, int i)
{
	return bound(s, sq.bind_null(s->st, i));
}

int rsx_sqlite_step(struct rsx_sqlite_stmt *s)
{
	int rc = sq.step(s->st);
	if (rc == SQ_ROW)
		return 1;
	if (rc == SQ_DONE)
		return 0;
	return fail(s->c, rc);
}

int rsx_sqlite_reset(struct rsx_sqlite_stmt *s)
{
	sq.reset(s->st);	/* returns the last step's error again: already reported */
	return 0;
}

int rsx_sqlite_columns(const struct rsx_sqlite_stmt *s)
{
	return sq.column_count(s->st);
}

int rsx_sqlite_column_type(struct rsx_sqlite_stmt *s, int i)
{
	return sq.column_type(s->st, i);
}

int64_t rsx_sqlite_column_i64(struct rsx_sqlite_stmt *s, int i)
{
	return sq.column_int64(s->st, i);
}

double rsx_sqlite_column_f64(struct rsx_sqlite_stmt *s, int i)
{
	return sq.column_double(s->st, i);
}

const void *rsx_sqlite_column_bytes(struct rsx_sqlite_stmt *s, int i, size_t *n)
{
	const void *p = sq.column_blob(s->st, i);	/* a text's bytes too, without conversion */
	*n = (size_t)sq.column_bytes(s->st, i);
	return p;
}

static int bind_col(struct rsx_sqlite_stmt *s, int k, const uint8_t *row, const struct rsx_sqlite_col *c)
{
	int64_t v;
	if (c->null_offset >= 0) {
		memcpy(&v, row + c->null_offset, sizeof(v));
		if (v)
			return sq.bind_null(s->st, k);
	}
	const uint8_t *p = row + c->offset;
	if (c->type == RSX_SQLITE_INTEGER) {
		memcpy(&v, p, sizeof(v));
		return sq.bind_int64(s->st, k, v);
	}
	int64_t n = c->size;
	if (c->len_offset >= 0) {
		memcpy(&n, row + c->len_offset, sizeof(n));
		if (n < 0 || n > c->size)
			n = c->size;
	}
	if (c->type == RSX_SQLITE_TEXT)
		return sq.bind_text(s->st, k, n ? (const char *)p : "", (int)n, SQ_STATIC);
	return sq.bind_blob(s->st, k, n ? (const void *)p : "", (int)n, SQ_STATIC);
}

int64_t rsx_sqlite_rows(struct rsx_sqlite_stmt *s, const void *rows, size_t stride, size_t n,
			const struct rsx_sqlite_col *cols, size_t ncols)
{
	if ((n && !rows) || (int)ncols != sq.bind_parameter_count(s->st))
		return -EINVAL;
	for (size_t k = 0; k < ncols; k++) {
		const struct rsx_sqlite_col *c = &cols[k];
		if (c->offset + (c->type == RSX_SQLITE_INTEGER ? 8u : c->size) > stride ||
		    (c->type != RSX_SQLITE_INTEGER && c->type != RSX_SQLITE_BLOB && c->type != RSX_SQLITE_TEXT) ||
		    (c->len_offset >= 0 && (size_t)c->len_offset + 8 > stride) ||
		    (c->null_offset >= 0 && (size_t)c->null_offset + 8 > stride))
			return -EINVAL;
	}
	const uint8_t *row = rows;
	for (size_t i = 0; i < n; i++, row += stride) {
		for (size_t k = 0; k < ncols; k++) {
			int rc = bind_col(s, (int)k + 1, row, &cols[k]);
			if (rc != SQ_OK) {
				sq.reset(s->st);
				return fail(s->c, rc);
			}
		}
		int rc = sq.step(s->st);
		if (rc != SQ_DONE && rc != SQ_ROW) {
			fail(s->c, rc);
			sq.reset(s->st);
			return -EIO;
		}
		sq.reset(s->st);
	}
	return (int64_t)n;
}
