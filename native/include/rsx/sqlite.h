/*
 * rsx/sqlite.h - the history store's SQLite writer connection (specs/store.md 7).
 *
 * A SQLite connection driven from C so that the store binds its numpy rows
 * straight into prepared statements (rsx_sqlite_rows: no Python object per
 * row or per value). It links against nothing at build time: the SQLite API
 * is resolved at run time from the libsqlite3 shared library, and with
 * RSX_SQLITE_LOADED only from one already loaded into the process (the copy
 * Python's sqlite3 module uses: two copies of SQLite in one process would
 * each keep their own POSIX lock bookkeeping and could corrupt a database).
 *
 * Return contract: >= 0 on success; -ENOENT (no usable libsqlite3),
 * -EINVAL (bad arguments), -ENOMEM, or -EIO for an error SQLite reported:
 * its extended result code is rsx_sqlite_errcode(), its text rsx_sqlite_errmsg().
 */
#ifndef RSX_SQLITE_H
#define RSX_SQLITE_H

#include <stddef.h>
#include <stdint.h>

/* rsx_sqlite_open flags */
#define RSX_SQLITE_LOADED	0x01u	/* use only a libsqlite3 already loaded in this process */
#define RSX_SQLITE_READONLY	0x02u	/* open read-only (else read-write, created if missing) */

/* column types (SQLite's fundamental datatypes) */
#define RSX_SQLITE_INTEGER	1
#define RSX_SQLITE_FLOAT	2
#define RSX_SQLITE_TEXT		3
#define RSX_SQLITE_BLOB		4
#define RSX_SQLITE_NULL		5

struct rsx_sqlite;
struct rsx_sqlite_stmt;

int rsx_sqlite_open(const char *path, unsigned flags, int busy_ms, struct rsx_sqlite **out);
void rsx_sqlite_close(struct rsx_sqlite *c);
/* SQLite's extended result code and message of the connection's last error. */
int rsx_sqlite_errcode(const struct rsx_sqlite *c);
const char *rsx_sqlite_errmsg(const struct rsx_sqlite *c);
/* Run one or more statements without parameters (BEGIN, COMMIT, DDL). */
int rsx_sqlite_exec(struct rsx_sqlite *c, const char *sql);

/* One statement: prepare, bind (1-based), step (1 = a row, 0 = done), read columns (0-based), reset. */
int rsx_sqlite_prepare(struct rsx_sqlite *c, const char *sql, struct rsx_sqlite_stmt **out);
void rsx_sqlite_finalize(struct rsx_sqlite_stmt *s);
int rsx_sqlite_params(const struct rsx_sqlite_stmt *s);
int rsx_sqlite_bind_i64(struct rsx_sqlite_stmt *s, int i, int64_t v);
int rsx_sqlite_bind_f64(struct rsx_sqlite_stmt *s, int i, double v);
int rsx_sqlite_bind_blob(struct rsx_sqlite_stmt *s, int i, const void *p, size_t n);
int rsx_sqlite_bind_text(struct rsx_sqlite_stmt *s, int i, const char *p, size_t n);
int rsx_sqlite_bind_null(struct rsx_sqlite_stmt *s, int i);
int rsx_sqlite_step(struct rsx_sqlite_stmt *s);
int rsx_sqlite_reset(struct rsx_sqlite_stmt *s);
int rsx_sqlite_columns(const struct rsx_sqlite_stmt *s);
int rsx_sqlite_column_type(struct rsx_sqlite_stmt *s, int i);
int64_t rsx_sqlite_column_i64(struct rsx_sqlite_stmt *s, int i);
double rsx_sqlite_column_f64(struct rsx_sqlite_stmt *s, int i);
/* The column's bytes (text or blob) and their length; valid until the next step, reset or finalize. */
const void *rsx_sqlite_column_bytes(struct rsx_sqlite_stmt *s, int i, size_t *n);

/* How rsx_sqlite_rows binds parameter k + 1 from each row: the field at offset. */
struct rsx_sqlite_col {
	uint32_t offset;	/* of the field in the row */
	uint16_t type;		/* RSX_SQLITE_INTEGER (an int64), _BLOB or _TEXT (size bytes) */
	uint16_t size;		/* bytes of a blob or text field */
	int32_t len_offset;	/* >= 0: an int64 field holding how many of the size bytes to bind */
	int32_t null_offset;	/* >= 0: an int64 field; not 0 binds NULL instead */
};

/*
 * Execute s once per row: n rows of stride bytes from rows, parameter k + 1
 * bound from cols[k] (ncols = the statement's parameter count). Returns n, or
 * an error (the rows before the failing one were executed: the caller rolls
 * the transaction back).
 */
int64_t rsx_sqlite_rows(struct rsx_sqlite_stmt *s, const void *rows, size_t stride, size_t n,
			const struct rsx_sqlite_col *cols, size_t ncols);

#endif
