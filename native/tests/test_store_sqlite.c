/*
 * test_store_sqlite.c - the store's SQLite writer connection: rows bound from
 * a struct array (integers, blobs and texts of a given length, NULLs), read
 * back; a duplicate key, bad SQL and bad column maps as errors. Skipped (77)
 * where libsqlite3.so.0 is not installed.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rsx/sqlite.h"
#include "t_helpers.h"

struct row {
	int64_t id;
	uint8_t key[16];
	uint8_t name[24];
	int64_t name_len;
	int64_t value;
	int64_t value_null;
};

static const struct rsx_sqlite_col COLS[] = {
	{ .offset = offsetof(struct row, id), .type = RSX_SQLITE_INTEGER, .len_offset = -1, .null_offset = -1 },
	{ .offset = offsetof(struct row, key), .type = RSX_SQLITE_BLOB, .size = 16, .len_offset = -1,
	  .null_offset = -1 },
	{ .offset = offsetof(struct row, name), .type = RSX_SQLITE_TEXT, .size = 24,
	  .len_offset = offsetof(struct row, name_len), .null_offset = -1 },
	{ .offset = offsetof(struct row, value), .type = RSX_SQLITE_INTEGER, .len_offset = -1,
	  .null_offset = offsetof(struct row, value_null) },
};

int main(void)
{
	char path[] = "/tmp/rsx-test-sqlite-XXXXXX";
	int fd = mkstemp(path);
	struct rsx_sqlite *c;
	struct rsx_sqlite_stmt *s, *q;
	if (fd < 0)
		return T_EXIT_FAIL;
	close(fd);
	int rc = rsx_sqlite_open(path, 0, 1000, &c);
	if (rc == -ENOENT) {
		unlink(path);
		fprintf(stderr, "libsqlite3.so.0 not found: skipped\n");
		return T_EXIT_SKIP;
	}
	T_EQ(rc, 0);
	T_EQ(rsx_sqlite_exec(c, "CREATE TABLE t (id INTEGER PRIMARY KEY, key BLOB, name TEXT, value INTEGER)"), 0);

	struct row rows[3];
	memset(rows, 0, sizeof(rows));
	for (int i = 0; i < 3; i++) {
		rows[i].id = i + 1;
		memset(rows[i].key, 0xa0 + i, 16);
		rows[i].name_len = snprintf((char *)rows[i].name, sizeof(rows[i].name), "order-%d", i);
		rows[i].value = -1000 * i;
	}
	rows[1].value_null = 1;
	rows[2].name_len = 0;				/* an empty text, not NULL */
	T_EQ(rsx_sqlite_prepare(c, "INSERT INTO t VALUES (?, ?, ?, ?)", &s), 0);
	T_EQ(rsx_sqlite_params(s), 4);
	T_EQ(rsx_sqlite_rows(s, rows, sizeof(rows[0]), 3, COLS, 4), 3);
	T_EQ(rsx_sqlite_rows(s, rows, sizeof(rows[0]), 3, COLS, 3), -EINVAL);	/* 4 parameters */
	struct rsx_sqlite_col wide = COLS[0];
	wide.offset = sizeof(struct row);			/* outside the row */
	struct rsx_sqlite_col bad[4] = { wide, COLS[1], COLS[2], COLS[3] };
	T_EQ(rsx_sqlite_rows(s, rows, sizeof(rows[0]), 3, bad, 4), -EINVAL);
	T_EQ(rsx_sqlite_rows(s, rows, sizeof(rows[0]), 1, COLS, 4), -EIO);	/* id 1 again */
	T_EQ(rsx_sqlite_errcode(c), 1555);			/* SQLITE_CONSTRAINT_PRIMARYKEY */
	T_CHECK(strstr(rsx_sqlite_errmsg(c), "UNIQUE") != NULL);

	T_EQ(rsx_sqlite_prepare(c, "SELECT id, key, name, value FROM t WHERE id >= ? ORDER BY id", &q), 0);
	T_EQ(rsx_sqlite_bind_i64(q, 1, 2), 0);
	T_EQ(rsx_sqlite_step(q), 1);
	size_t n;
	const uint8_t *p = rsx_sqlite_column_bytes(q, 1, &n);
	T_EQ(n, 16);
	T_EQ(p[15], 0xa1);
	p = rsx_sqlite_column_bytes(q, 2, &n);
	T_EQ(n, 7);
	T_CHECK(memcmp(p, "order-1", 7) == 0);
	T_EQ(rsx_sqlite_column_type(q, 3), RSX_SQLITE_NULL);
	T_EQ(rsx_sqlite_step(q), 1);
	T_EQ(rsx_sqlite_column_type(q, 2), RSX_SQLITE_TEXT);
	rsx_sqlite_column_bytes(q, 2, &n);
	T_EQ(n, 0);
	T_EQ(rsx_sqlite_column_i64(q, 3), -2000);
	T_EQ(rsx_sqlite_step(q), 0);
	T_EQ(rsx_sqlite_columns(q), 4);
	rsx_sqlite_finalize(q);
	rsx_sqlite_finalize(s);

	T_EQ(rsx_sqlite_prepare(c, "SELEKT 1", &q), -EIO);
	T_CHECK(strstr(rsx_sqlite_errmsg(c), "syntax") != NULL);
	T_EQ(rsx_sqlite_prepare(c, "  -- nothing", &q), -EINVAL);
	T_EQ(rsx_sqlite_exec(c, "BEGIN; INSERT INTO t (id) VALUES (9); ROLLBACK"), 0);
	rsx_sqlite_close(c);

	T_EQ(rsx_sqlite_open(path, RSX_SQLITE_READONLY, 0, &c), 0);	/* libsqlite3 is loaded now */
	T_EQ(rsx_sqlite_exec(c, "INSERT INTO t (id) VALUES (10)"), -EIO);
	T_EQ(rsx_sqlite_errcode(c) & 0xff, 8);			/* SQLITE_READONLY */
	rsx_sqlite_close(c);
	unlink(path);
	T_DONE();
}
