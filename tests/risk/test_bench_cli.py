"""`rsx bench risk` runs and prints verified JSON (a smoke run; the figures are not asserted)."""

import json

from rsx_appliance.cli import main


def test_bench_risk_smoke(capsys):
    rc = main(["bench", "risk", "--quick", "--repeat", "1", "--orders", "2000", "--fills", "3000",
               "--exposed", "2000", "--users", "3000", "--replay", "8000", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    res = out["results"]
    assert set(res) == {"pretrade", "fills", "mark", "recovery"}
    assert all(r["verified"] for r in res.values())
    assert res["pretrade"]["checks_per_s"] > 0 and res["recovery"]["fills"] == 8000


def test_bench_risk_bad_usage(capsys):
    assert main(["bench", "risk", "--only", "nonsense"]) == 2
