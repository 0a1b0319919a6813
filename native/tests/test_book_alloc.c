/*
 * test_book_alloc.c - matching never allocates and never makes a system call.
 *
 * 1. malloc, calloc, realloc, free, posix_memalign and aligned_alloc are
 *    interposed and counted while a mixed stream (sweeps with suspensions,
 *    recentres, amends, cancel-alls, snapshots) runs: the count must be 0.
 * 2. The same stream runs in a child under SECCOMP_MODE_STRICT, where any
 *    system call but read/write/exit kills the process: the child must exit
 *    normally and report the same event count.
 */
#define _GNU_SOURCE
#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t_book.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static volatile int counting;
static volatile long allocs;

void *malloc(size_t n)
{
	if (counting)
		allocs++;
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t n)
{
	if (counting)
		allocs++;
	return __libc_calloc(a, n);
}

void *realloc(void *p, size_t n)
{
	if (counting)
		allocs++;
	return __libc_realloc(p, n);
}

void free(void *p)
{
	if (counting && p)
		allocs++;
	__libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (counting)
		allocs++;
	*out = __libc_memalign(align, n);
	return *out ? 0 : ENOMEM;
}

void *aligned_alloc(size_t align, size_t n)
{
	if (counting)
		allocs++;
	return __libc_memalign(align, n);
}

#define NOPS 40000
static struct rsx_book_op ops[NOPS];
static _Alignas(64) uint8_t sinkbuf[1024];
static uint8_t snap[4 << 20];

/* Run the stream with a 1 KiB sink (many suspensions); returns the number of events. */
static long run_stream(struct rsx_book *b)
{
	long events = 0;
	struct rsx_book_sink s = { .buf = sinkbuf, .cap = sizeof sinkbuf };
	for (int i = 0; i < NOPS; i++) {
		s.len = s.count = 0;
		int rc;
		const struct rsx_book_op *op = &ops[i];
		switch (op->kind) {
		case RSX_BOOK_OP_NEW: {
			struct rsx_order o = { .user_id = op->user_id, .order_id = op->order_id,
					       .side = op->side, .tif = op->tif, .flags = op->flags,
					       .stp = op->stp, .price = op->price, .qty = op->qty };
			rc = rsx_book_new_order(b, &o, &s);
			break;
		}
		case RSX_BOOK_OP_CANCEL: {
			struct rsx_cancel c = { .user_id = op->user_id, .order_id = op->order_id };
			rc = rsx_book_cancel(b, &c, &s);
			break;
		}
		case RSX_BOOK_OP_CANCEL_ALL: {
			struct rsx_cancel_all c = { .user_id = op->user_id, .request_id = op->order_id };
			rc = rsx_book_cancel_all(b, &c, &s);
			break;
		}
		default: {
			struct rsx_amend a = { .user_id = op->user_id, .order_id = op->order_id,
					       .price = op->price, .qty = op->qty };
			rc = rsx_book_amend(b, &a, &s);
			break;
		}
		}
		for (;;) {
			if (rc < 0)
				return -1;
			events += s.count;
			if (rc == 0)
				break;
			s.len = s.count = 0;
			rc = rsx_book_resume(b, &s);
		}
		if (i % 5000 == 4999 && rsx_book_snapshot(b, (uint64_t)i, snap, sizeof snap) <= 0)
			return -1;
	}
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	if (st.recentres == 0)
		return -2;	/* the stream must exercise recentering */
	return events;
}

int main(void)
{
	t_mk_ops(ops, NOPS, 1);

	/* 1. no allocation */
	struct rsx_book *b = t_book_ex(1 << 16, 0, 64, 1000, 1);
	counting = 1;
	long events = run_stream(b);
	counting = 0;
	T_CHECK(events > NOPS);
	T_EQ(allocs, 0);
	T_BOOK_OK(b);
	rsx_book_destroy(b);

	/* 2. no system call: the same stream under strict seccomp */
	int fds[2];
	T_EQ(pipe(fds), 0);
	b = t_book_ex(1 << 16, 0, 64, 1000, 1);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0)
			syscall(SYS_exit, 77);
		long n = run_stream(b);
		if (write(fds[1], &n, sizeof n) != sizeof n)
			syscall(SYS_exit, 2);
		syscall(SYS_exit, 0);	/* exit_group is not allowed in strict mode */
	}
	close(fds[1]);
	int status = 0;
	T_EQ(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		fprintf(stderr, "seccomp strict mode unavailable: syscall check skipped\n");
	} else {
		T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		if (WIFSIGNALED(status))
			fprintf(stderr, "child killed by signal %d (a system call while matching?)\n",
				WTERMSIG(status));
		long child_events = 0;
		T_EQ(read(fds[0], &child_events, sizeof child_events), sizeof child_events);
		T_EQ(child_events, events);
	}
	rsx_book_destroy(b);
	T_DONE();
}
