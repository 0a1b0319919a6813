/*
 * test_wal_fail.c - a failed sync makes the writer FAILED: the durable
 * watermark freezes, every append and wait returns the error, close reports
 * it, and a restart recovers from the disk.
 *
 * The test program defines fdatasync() itself: librsx.a is linked statically,
 * so the writer's calls land here (fault injection without LD_PRELOAD).
 */
#include <errno.h>
#include <sys/syscall.h>

#include "t_helpers.h"
#include "t_wal.h"

static volatile int fail_syncs;

int fdatasync(int fd)
{
	if (fail_syncs) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

int main(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_NO_PREALLOC);
	cfg.file_size = 1 << 20;
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	for (uint64_t i = 1; i <= 100; i++) {
		struct rsx_order_inserted p = t_payload(i);
		T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, NULL), 80);
	}
	T_EQ(rsx_wal_flush(w), 0);
	T_EQ(rsx_wal_durable_seq(w), 100);

	fail_syncs = 1;
	struct rsx_order_inserted p = t_payload(101);
	uint64_t seq;
	T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, &seq), 80);
	T_EQ(rsx_wal_wait_durable(w, 101, 2000000000), -EIO);
	struct rsx_wal_stats st;
	rsx_wal_stats(w, &st);
	T_EQ(st.state, RSX_WAL_FAILED);
	T_EQ(st.error, -EIO);
	T_EQ(rsx_wal_durable_seq(w), 100);		/* frozen */
	fail_syncs = 0;				/* even once the disk "recovers": sticky */
	T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, &seq), -EIO);
	T_EQ(rsx_wal_wait_durable(w, 101, 1000000), -EIO);
	T_EQ(rsx_wal_flush(w), -EIO);
	struct rsx_wal_tip tip;
	T_EQ(rsx_wal_tip_read(dir, 7, &tip), 0);
	T_EQ(tip.state, RSX_WAL_FAILED);
	T_EQ(tip.durable_seq, 100);
	T_EQ(rsx_wal_close(w), -EIO);

	/* a restart re-reads the disk: record 101 reached the file, so it is recovered and synced */
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	T_EQ(rsx_wal_next_seq(w), 102);
	T_EQ(rsx_wal_durable_seq(w), 101);
	T_EQ(rsx_wal_close(w), 0);
	t_rmdir(dir);
	T_DONE();
}
