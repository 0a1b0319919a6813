"""The store on a real PostgreSQL server the test starts itself (initdb in a temporary directory, run as
an unprivileged user, stopped afterwards): same rows as the streams; the database stopped for a while
(the store waits and catches up, the WAL writers never wait)."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed (pip install -e '.[test]')")

from rsx_appliance.config import load_config
from rsx_appliance.store import open_store
from rsx_appliance.store.db import open_database
from rsx_appliance.store.service import StoreService

from storeutil import pg_server, write_config
from test_store import (RISK0, Venue, check_equal, check_reused_order_id, check_unvalued_fills, serve, store_venue,
                        tips_of)


@pytest.fixture
def pg():
    server = pg_server()
    yield server
    server.cleanup()


def pg_venue(tmp_path, pg, **kw):
    venue = Venue(tmp_path, **kw)
    venue.cfg_path = write_config(tmp_path / "rsx.toml", tmp_path / "data", venue.base, url=pg.url,
                                  batch_ms=20, batch_records=500)
    venue.cfg = load_config(venue.cfg_path)
    return venue


def test_postgresql_rows_equal_the_streams(tmp_path, pg):
    venue = pg_venue(tmp_path, pg)
    venue.settle_funding()
    store_venue(venue)
    db = open_database(pg.url, readonly=True)
    check_equal(venue, db)
    st = open_store(pg.url)
    for user in range(1, 11):
        for row in st.pnl(user):
            pos = venue.risk.shard.position(user, row.symbol_id)
            assert (row.realised_pnl, row.fees, row.funding) == (pos["rpnl"], pos["fees"], pos["funding"])
    page = st.fills(3, limit=5)
    assert len(page.rows) == 5 and page.next is not None
    venue.close()


def test_database_stopped_for_a_while_store_waits_and_catches_up(tmp_path, pg):
    venue = pg_venue(tmp_path, pg, orders=200)
    first = tips_of(venue)

    async def main():
        servers = await serve(venue)
        svc = StoreService(venue.cfg)
        task = asyncio.create_task(svc.run())
        try:
            while {s.stream_id: s.applied_seq for s in svc.sources} != first or svc.state != "ready":
                assert not task.done(), task.exception()
                await asyncio.sleep(0.05)
            await asyncio.to_thread(pg.stop)
            # the exchange goes on while the database is down: appends and fsyncs do not wait
            t0 = time.monotonic()
            await asyncio.to_thread(venue.trade, 300)
            trade_s = time.monotonic() - t0
            want = tips_of(venue)
            deadline = time.monotonic() + 30
            while svc.db_state != "waiting":
                assert time.monotonic() < deadline and not task.done()
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            assert svc.db_state == "waiting" and svc.counters.db_errors >= 1
            assert {s.stream_id: s.applied_seq for s in svc.sources}[1] == first[1]
            await asyncio.to_thread(pg.start)
            deadline = time.monotonic() + 60
            while {s.stream_id: s.applied_seq for s in svc.sources} != want:
                assert time.monotonic() < deadline and not task.done()
                await asyncio.sleep(0.05)
            assert svc.db_state == "ok"
            svc.stop()
            assert await task == 0
            return trade_s, svc
        finally:
            if not task.done():
                task.cancel()
            for s in servers:
                await s.close()

    trade_s, svc = asyncio.run(asyncio.wait_for(main(), 180))
    assert svc.counters.db_wait_s > 0.5
    db = open_database(pg.url, readonly=True)
    check_equal(venue, db)
    assert dict(db.query("SELECT stream_id, applied_seq FROM stream_tips"))[RISK0] == tips_of(venue)[RISK0]
    venue.close()


def test_postgresql_an_order_id_accepted_again_starts_its_row_over(tmp_path, pg):
    # the COPY of the accepted orders meets the old row: rolled back to its savepoint, merged instead
    check_reused_order_id(tmp_path / "wal", pg.url)


def test_postgresql_fills_that_cannot_be_valued_keep_null_value_and_fees(tmp_path, pg):
    check_unvalued_fills(tmp_path / "wal", pg.url)
