"""A lost tail of the active file (specs/wal.md 2.7): the last records vanish exactly at a record
boundary (truncated, or zeroed to the end). Before: `rsx wal verify` said OK and the writer
reopened below the durable seq it had published, handing those seqs out again with new content.
Now: verify reports the loss (exit 1), the writer refuses, and an operator may accept the loss,
which records the lost seqs as SEQ_LOST tombstones and never reuses one."""

from __future__ import annotations

import pytest

from rsx_appliance.cli import main
from rsx_appliance.errors import DurableLossError
from rsx_appliance.records import RecordType
from rsx_appliance.wal import WalReader, WalWriter, consumer_set, published, read_tip
from rsx_appliance.wal.tools import verify

from walutil import INSERTED, append_n

N, KEEP = 300, 180


def _stream(d, prealloc: bool = False) -> None:
    with WalWriter(d, 1, file_size=1 << 20, prealloc=prealloc) as w:
        append_n(w, N)


def _cut(d, how: str) -> None:
    active = next(d.glob("*_active.wal"))
    if how == "truncate":
        with open(active, "r+b") as f:
            f.truncate(KEEP * 80)
    else:                                          # zero the last records, size unchanged
        with open(active, "r+b") as f:
            f.seek(KEEP * 80)
            f.write(bytes((N - KEEP) * 80))


@pytest.mark.parametrize("how", ["truncate", "zero"])
def test_lost_tail_is_reported_and_refused(tmp_path, capsys, how):
    _stream(tmp_path, prealloc=how == "zero")
    _cut(tmp_path, how)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.wal")}
    rep = verify(tmp_path)
    assert not rep.ok and f"seqs {KEEP + 1}..{N} are lost" in rep.problems[-1]
    assert main(["wal", "verify", str(tmp_path)]) == 1
    assert "lost" in capsys.readouterr().out
    with pytest.raises(DurableLossError) as e:
        WalWriter(tmp_path, 1, file_size=1 << 20)
    assert f"end at seq {KEEP}" in str(e.value) and f"seq {N} was reported durable" in str(e.value)
    assert "tip" in str(e.value) and "accept-loss" in str(e.value)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.wal")} == before   # untouched
    assert read_tip(tmp_path, 1).durable_seq == N                              # evidence kept


def test_a_consumer_position_proves_the_loss_without_a_tip(tmp_path):
    _stream(tmp_path)
    consumer_set(tmp_path, "risk-0", 250)
    _cut(tmp_path, "truncate")
    (tmp_path / "1.tip").unlink()
    assert published(tmp_path, 1).seq == 250
    with pytest.raises(DurableLossError, match="consumer 'risk-0'"):
        WalWriter(tmp_path, 1)
    assert not verify(tmp_path).ok


def test_accepting_the_loss_records_it_and_never_reuses_a_seq(tmp_path, capsys):
    _stream(tmp_path)
    _cut(tmp_path, "truncate")
    assert main(["wal", "accept-loss", str(tmp_path)]) == 0
    assert f"recorded seqs {KEEP + 1}..{N} as lost" in capsys.readouterr().out
    rep = verify(tmp_path)
    assert rep.ok and rep.last_seq == N
    assert rep.notes == [f"seqs {KEEP + 1}..{N} were lost and the loss accepted by an operator "
                         f"({N - KEEP} SEQ_LOST tombstones)"]
    with WalWriter(tmp_path, 1, file_size=1 << 20) as w:
        assert w.next_seq == N + 1 and w.stats().lost_first == 0
        assert w.append(INSERTED, qty=N + 1) == N + 1
    with WalReader(tmp_path) as r:
        seqs, types = [], []
        for b in r:
            seqs += b.seqs.tolist()
            types += b.index["type"].tolist()
    assert seqs == list(range(1, N + 2))
    assert types[KEEP:N] == [RecordType.SEQ_LOST] * (N - KEEP)
    assert types[:KEEP] == [INSERTED] * KEEP and types[N] == INSERTED
    # a second accept finds nothing to record
    assert main(["wal", "accept-loss", str(tmp_path)]) == 0
    assert "nothing lost" in capsys.readouterr().out


def test_accept_loss_json_follows_its_schema(tmp_path, capsys):
    pytest.importorskip("jsonschema", reason="jsonschema not installed (test extra)")
    from cliutil import check

    _stream(tmp_path)
    _cut(tmp_path, "truncate")
    assert main(["wal", "verify", str(tmp_path), "--json"]) == 1
    (doc,) = check("wal-verify", capsys.readouterr().out)
    assert not doc["ok"] and doc["notes"] == []
    assert main(["wal", "accept-loss", str(tmp_path), "--json"]) == 0
    (doc,) = check("wal-accept-loss", capsys.readouterr().out)
    assert (doc["lost_first"], doc["lost_last"], doc["next_seq"]) == (KEEP + 1, N, N + 1)
    assert main(["wal", "verify", str(tmp_path), "--json"]) == 0
    (doc,) = check("wal-verify", capsys.readouterr().out)
    assert doc["ok"] and len(doc["notes"]) == 1
