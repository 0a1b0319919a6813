/*
 * test_wal_api.c - the writer's contract at its edges, with threads:
 * durable_seq never runs ahead of the tip file, and close() fails an
 * appender (or waiter) blocked in another thread before it frees anything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include "t_helpers.h"
#include "t_wal.h"

/* ---- durable_seq is published only after the tip says so ---- */

struct observer {
	const uint64_t *durable;
	const struct rsx_wal_tip *tip;
	volatile int stop;
	uint64_t checks, ahead;
};

static void *observe(void *arg)
{
	struct observer *o = arg;
	while (!o->stop) {
		uint64_t d = __atomic_load_n(o->durable, __ATOMIC_ACQUIRE);
		uint64_t t = __atomic_load_n(&o->tip->durable_seq, __ATOMIC_RELAXED);
		o->checks++;
		if (t < d)
			o->ahead++;	/* a consumer could hold a seq the tip does not cover */
	}
	return NULL;
}

static void test_durable_after_tip(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_NOSYNC | RSX_WAL_NO_PREALLOC);
	cfg.file_size = 64 << 20;
	cfg.ring_size = 1 << 20;
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	char path[256];
	snprintf(path, sizeof path, "%s/7.tip", dir);
	int fd = open(path, O_RDONLY);
	T_CHECK(fd >= 0);
	void *tip = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	T_CHECK(tip != MAP_FAILED);
	struct observer o = { .durable = rsx_wal_durable_ptr(w), .tip = tip };
	pthread_t th;
	pthread_create(&th, NULL, observe, &o);
	for (uint64_t i = 1; i <= 200000; i++) {	/* one batch per record: many publications */
		struct rsx_order_inserted p = t_payload(i);
		T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, NULL), 80);
		T_EQ(rsx_wal_wait_durable(w, i, -1), 0);
	}
	T_EQ(rsx_wal_flush(w), 0);
	o.stop = 1;
	pthread_join(th, NULL);
	fprintf(stderr, "durable vs tip: %llu checks, %llu with durable_seq ahead of the tip\n",
		(unsigned long long)o.checks, (unsigned long long)o.ahead);
	T_EQ(o.ahead, 0);
	T_CHECK(o.checks > 1000);
	munmap(tip, 4096);
	close(fd);
	T_EQ(rsx_wal_close(w), 0);
	t_rmdir(dir);
}

/* ---- close() with an appender blocked in another thread ---- */

struct appender {
	struct rsx_wal *w;
	int rc;
	uint64_t appended;
	volatile int started;
};

static void *append_until_blocked(void *arg)
{
	struct appender *a = arg;
	a->started = 1;
	for (uint64_t i = 1; i <= 100000; i++) {
		struct rsx_order_inserted p = t_payload(i);
		int rc = rsx_wal_append(a->w, RSX_REC_ORDER_INSERTED, &p, sizeof p, NULL);
		if (rc < 0) {
			a->rc = rc;
			return NULL;
		}
		a->appended++;
	}
	return NULL;
}

struct waiter {
	struct rsx_wal *w;
	int rc;
};

static void *wait_far(void *arg)
{
	struct waiter *x = arg;
	x->rc = rsx_wal_wait_durable(x->w, 1u << 30, -1);	/* a seq that will never come */
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test_wal_api: close() hung with a blocked appender\n";
	if (write(2, msg, sizeof msg - 1) < 0)
		_exit(1);
	_exit(1);
}

static void test_close_fails_blocked_appender(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_NO_PREALLOC);
	cfg.ring_size = 64 * 1024;
	cfg.batch_records = 1000000;	/* the flusher waits for N records or T: the ring fills first */
	cfg.batch_us = 30 * 1000 * 1000;
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	struct appender a = { .w = w };
	struct waiter x = { .w = w };
	pthread_t ta, tx;
	pthread_create(&ta, NULL, append_until_blocked, &a);
	pthread_create(&tx, NULL, wait_far, &x);
	for (int i = 0; i < 2000; i++) {	/* until the appender stalls on the full ring */
		struct rsx_wal_stats st;
		rsx_wal_stats(w, &st);
		if (st.stalls > 0 && a.appended > 0)
			break;
		usleep(1000);
	}
	usleep(20000);
	uint64_t before = a.appended;
	T_CHECK(before > 0 && before < 100000);
	signal(SIGALRM, on_alarm);
	alarm(10);
	int rc = rsx_wal_close(w);	/* from another thread than the appender's */
	pthread_join(ta, NULL);
	pthread_join(tx, NULL);
	alarm(0);
	T_EQ(a.rc, -ECANCELED);
	T_EQ(x.rc, -ECANCELED);
	T_EQ(rc, 0);			/* everything appended before close became durable */
	/* a new writer finds exactly the records appended, contiguous */
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	T_EQ(rsx_wal_next_seq(w), a.appended + 1);
	T_EQ(rsx_wal_close(w), 0);
	t_rmdir(dir);
}

int main(void)
{
	test_durable_after_tip();
	test_close_fails_blocked_appender();
	T_DONE();
}
