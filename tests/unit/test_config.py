"""Settings: TOML file, environment overrides, development defaults, refused secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.config import ConfigError, load

GOOD = "k" * 40


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(text)
    return path


def test_file_values_and_env_overrides_parsed_as_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[security]\nsecret_keys = ["{GOOD}"]\n[policy]\nthreshold = 0.05\n')
    env = {
        "MAILFLOW_POLICY__THRESHOLD": "0.07",
        "MAILFLOW_POLICY__COUNT_REFUSALS": "true",
        "MAILFLOW_API__TOKENS": '["a", "b"]',
        "MAILFLOW_DATABASE__URL": "sqlite:///x.db",
    }
    settings = load(path, env).settings
    assert settings.policy.threshold == 0.07
    assert settings.policy.count_refusals is True
    assert settings.api.tokens == ["a", "b"]
    assert settings.database.url == "sqlite:///x.db"


def test_no_file_gives_development_defaults_with_a_kept_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = load(None, {})
    assert first.source is None
    assert first.settings.database.url == "sqlite:///./mailflow.db"
    assert first.settings.smtp.mode == "embedded"
    [secret] = first.settings.security.secret_keys
    assert len(secret) >= 32
    assert (tmp_path / ".mailflow" / "secret_key").stat().st_mode & 0o077 == 0
    assert load(None, {}).settings.security.secret_keys == [secret]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[server]\nport = 1\n", "security.secret_keys"),
        (
            '[security]\nsecret_keys = ["change-me-change-me-change-me-change-me"]\n',
            "secret_keys[0]",
        ),
        ('[security]\nsecret_keys = ["short"]\n', "secret_keys[0]"),
        (f'[security]\nsecret_keys = ["{GOOD}"]\n[smtp]\nmode = "carrier-pigeon"\n', "smtp.mode"),
        (f'[security]\nsecret_keys = ["{GOOD}"]\n[policy]\nthreshold = "high"\n', "threshold"),
        (f'[security]\nsecret_keys = ["{GOOD}"]\n[server]\ncolour = "red"\n', "server.colour"),
        (f'[security]\nsecret_keys = ["{GOOD}"]\n[database]\nurl = "mysql://x"\n', "database.url"),
        ("[security\n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(_write(tmp_path, text), {})
    assert names in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load(tmp_path / "nope.toml", {})


def test_bad_env_value_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[security]\nsecret_keys = ["{GOOD}"]\n')
    with pytest.raises(ConfigError, match=r"smtp\.concurrency"):
        load(path, {"MAILFLOW_SMTP__CONCURRENCY": "0"})


def _smtp(tmp_path: Path, lines: str) -> Path:
    return _write(tmp_path, f'[security]\nsecret_keys = ["{GOOD}"]\n[smtp]\n{lines}\n')


@pytest.mark.parametrize(
    ("lines", "tls"),
    [
        ("", "none"),
        ('tls = "implicit"', "implicit"),
        ('tls = "starttls"', "starttls"),
        ("starttls = true", "starttls"),
        ("starttls = false", "none"),
        ('starttls = true\ntls = "starttls"', "starttls"),
        ('starttls = false\ntls = "implicit"', "implicit"),
    ],
)
def test_smtp_tls_mode_and_the_older_starttls_key(tmp_path: Path, lines: str, tls: str) -> None:
    assert load(_smtp(tmp_path, lines), {}).settings.smtp.tls == tls


def test_smtp_starttls_from_the_environment_still_means_starttls(tmp_path: Path) -> None:
    settings = load(_smtp(tmp_path, ""), {"MAILFLOW_SMTP__STARTTLS": "true"}).settings
    assert settings.smtp.tls == "starttls"


@pytest.mark.parametrize(
    "lines", ['starttls = true\ntls = "implicit"', 'starttls = false\ntls = "starttls"']
)
def test_smtp_starttls_contradicting_tls_is_refused_naming_both(tmp_path: Path, lines: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(_smtp(tmp_path, lines), {})
    assert "smtp.starttls" in str(info.value) and "smtp.tls" in str(info.value)


def test_smtp_tls_unknown_mode_and_missing_ca_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"smtp\.tls"):
        load(_smtp(tmp_path, 'tls = "ssl"'), {})
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"smtp\.tls_ca_file: .*nope\.pem"):
        load(_smtp(tmp_path, f'tls_ca_file = "{missing}"'), {})
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    assert load(_smtp(tmp_path, f'tls_ca_file = "{ca}"'), {}).settings.smtp.tls_ca_file == str(ca)
