"""The config is strict: no silent conversion, every error at once, deep nesting refused cleanly."""
from __future__ import annotations

from pathlib import Path

import pytest

from kiosk import config
from kiosk.errors import ConfigError


def _load(tmp_path: Path, text: str) -> config.Config:
    f = tmp_path / "kiosk.toml"
    f.write_text(text)
    return config.load(f)


@pytest.mark.parametrize("value", ['"1883"', "true", "1883.0"])
def test_a_port_of_the_wrong_type_is_refused_not_converted(tmp_path, value):
    with pytest.raises(ConfigError, match=r"kiosk\.toml: bad value for 'broker\.port'"):
        _load(tmp_path, f"[broker]\nport = {value}\n")


@pytest.mark.parametrize("table,key,value", [
    ("camera", "loop", "1"), ("camera", "width", '"640"'), ("kiosk", "site", "7"),
    ("paths", "state_dir", "3"), ("nfc", "timeout_s", "false"), ("kiosk", "languages", '"en"'),
    ("kiosk", "site", "1979-05-27"),
])
def test_no_value_is_converted(tmp_path, table, key, value):
    with pytest.raises(ConfigError, match=rf"bad value for '{table}\.{key}'"):
        _load(tmp_path, f"[{table}]\n{key} = {value}\n")


def test_an_integer_is_a_number_and_a_string_is_a_path(tmp_path):
    cfg = _load(tmp_path, '[camera]\nfps = 15\n[paths]\nstate_dir = "state"\n')
    assert cfg.camera.fps == 15.0 and cfg.paths.state_dir == tmp_path / "state"


def test_every_error_is_listed_at_once_each_naming_file_and_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, '[broker]\nport = "1883"\n[camera]\nfps = "fast"\n[kiosk]\nidd = "x"\n')
    msg = e.value.message
    assert msg.startswith(f"{tmp_path / 'kiosk.toml'}: 3 errors: ")
    for part in ("bad value for 'broker.port'", "bad value for 'camera.fps'", "unknown key 'kiosk.idd'"):
        assert part in msg
    assert "\n" not in msg and '"fast"' not in msg  # one line; values are not echoed


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", [
    "x = " + "[" * 3000 + "]" * 3000,
    "x = " + "{a = " * 3000 + "1" + "}" * 3000,
    "x." + "a." * 3000 + "b = 1",
])
def test_a_config_nested_3000_deep_is_a_clear_error(tmp_path, text):
    with pytest.raises(ConfigError, match="nested deeper than a config can be"):
        _load(tmp_path, text)


def test_from_dict_is_as_strict_as_a_file():
    with pytest.raises(ConfigError, match=r"demo: bad value for 'broker\.port'"):
        config.from_dict({"broker": {"port": "1883"}}, source="demo")
    assert config.from_dict({"paths": {"state_dir": Path("/tmp/x")}}).paths.state_dir == Path("/tmp/x")


def test_what_provisioning_writes_reads_back(tmp_path):
    cfg = config.from_dict({"kiosk": {"site": "clinic", "id": "kiosk-2"}, "broker": {"port": 8883}})
    f = tmp_path / "kiosk.toml"
    f.write_text(config.to_toml(cfg))
    assert config.load(f).broker.port == 8883
