"""`[console]` (specs/config.md 2, specs/console.md 2): defaults, the process, every bad value named."""

from __future__ import annotations

import tomllib

import pytest

from rsx_appliance.config import DEFAULT_TOML, ConsoleConfig, default_config, parse_config
from rsx_appliance.errors import ConfigError


def parse(tmp_path, console: dict | None = None, **top):
    doc = tomllib.loads(DEFAULT_TOML)
    if console is None:
        doc.pop("console", None)
    else:
        doc["console"] = console
    doc.update(top)
    return parse_config(doc, "<test>", tmp_path)


def test_default_console_is_the_last_process(tmp_path):
    cfg = default_config(tmp_path)
    assert cfg.console == ConsoleConfig()
    assert cfg.console.port == 8280 and cfg.console.listen == "127.0.0.1"
    p = cfg.processes[-1]
    assert (p.name, p.role, p.ws, p.cmp, p.dxs, p.stream_id) == ("console.0", "console", ("127.0.0.1", 8280),
                                                                 None, None, None)
    assert cfg.process("console.0") is p
    assert cfg.to_dict()["console"]["operator_audience"] == "rsx-operator"
    # no [console] table at all: the same defaults
    assert parse(tmp_path).console == ConsoleConfig()


def test_console_keys_and_disabling(tmp_path):
    cfg = parse(tmp_path, {"listen": "0.0.0.0", "port": 9000, "refresh_s": 5, "latency_window_s": 60,
                           "tune_check_s": 300, "operator_audience": "ops"})
    assert cfg.console == ConsoleConfig(True, "0.0.0.0", 9000, 5, 60, 300, "ops")
    assert cfg.process("console.0").ws == ("0.0.0.0", 9000)
    off = parse(tmp_path, {"enabled": False})
    assert "console.0" not in [p.name for p in off.processes]


@pytest.mark.parametrize("table,message", [
    ({"port": 0}, "<test>.console.port: must be >= 1, not 0"),
    ({"port": 70000}, "<test>.console.port: must be at most 65535, not 70000"),
    ({"port": "8280"}, "<test>.console.port"),
    ({"refresh_s": 0}, "<test>.console.refresh_s: must be >= 1, not 0"),
    ({"refresh_s": 61}, "<test>.console.refresh_s: must be at most 60, not 61"),
    ({"refresh_s": 10, "latency_window_s": 5}, "<test>.console.latency_window_s: must be >= 10, not 5"),
    ({"latency_window_s": 4000}, "<test>.console.latency_window_s: must be at most 3600, not 4000"),
    ({"tune_check_s": 5}, "<test>.console.tune_check_s: must be >= 10, not 5"),
    ({"operator_audience": "rsx"}, "<test>.console.operator_audience: must be a non-empty audience other than"),
    ({"operator_audience": ""}, "<test>.console.operator_audience: must be a non-empty audience other than"),
    ({"enabled": 1}, "<test>.console.enabled"),
    ({"colour": "blue"}, "<test>.console.colour: unknown key"),
    ({"port": 8080}, "console.0 and gateway.0 both use tcp port 8080"),
    ({"port": 8180}, "console.0 and marketdata.0 both use tcp port 8180"),
])
def test_bad_console_values_are_named(tmp_path, table, message):
    with pytest.raises(ConfigError) as exc:
        parse(tmp_path, table)
    assert message in str(exc.value)
