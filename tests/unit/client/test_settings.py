"""Where a remote connection's token and trust settings come from, in which order."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.client.settings import Settings, config_path, settings_for
from pyvirt.client.ssh import REMOTE_SOCKET, SSHTunnel
from pyvirt.client.uri import resolve
from pyvirt.errors import InvalidConfigError, OperationFailedError


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "client.toml"
    monkeypatch.setenv("PYVIRT_CLIENT_CONFIG", str(path))
    monkeypatch.delenv("PYVIRT_TOKEN", raising=False)
    monkeypatch.delenv("PYVIRT_CA", raising=False)
    return path


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    path.chmod(mode)


def test_no_file_no_environment(conf: Path) -> None:
    assert settings_for(resolve("pyvirt+tls://h/")) == Settings()


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYVIRT_CLIENT_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "pyvirt" / "client.toml"


def test_order_uri_then_environment_then_entry_then_default(
    conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(conf, '[default]\ntoken = "t-default"\nca = "ca-default.pem"\n'
                 '[uri."pyvirt+tls://kvm1:16514"]\ntoken = "t-kvm1"\ncert = "me.pem"\n'
                 'key = "/abs/me.key"\ninsecure = true\n')  # fmt: skip
    s = settings_for(resolve("pyvirt+tls://KVM1/"))  # default port, any case, any path
    assert s.token == "t-kvm1" and s.insecure is True
    assert s.ca == str(conf.parent / "ca-default.pem")
    assert s.cert == str(conf.parent / "me.pem") and s.key == "/abs/me.key"
    assert settings_for(resolve("pyvirt+tls://kvm2/")).token == "t-default"
    assert settings_for(resolve("pyvirt+tls://kvm1:1234/")).token == "t-default"
    monkeypatch.setenv("PYVIRT_TOKEN", "t-env")
    monkeypatch.setenv("PYVIRT_CA", "/env/ca.pem")
    s = settings_for(resolve("pyvirt+tls://kvm1/?ca=/uri/ca.pem&insecure=0&fingerprint=AB"))
    assert (s.token, s.ca, s.insecure, s.fingerprint) == ("t-env", "/uri/ca.pem", False, "AB")
    # a token never comes from the URI
    assert settings_for(resolve("pyvirt+tls://kvm1/?token=x")).token == "t-env"


def test_token_file(conf: Path) -> None:
    (conf.parent / "kvm1.token").write_text("t-from-file\n")
    _write(conf, '[uri."pyvirt+tls://kvm1/"]\ntoken_file = "kvm1.token"\n')
    assert settings_for(resolve("pyvirt+tls://kvm1/")).token == "t-from-file"
    _write(conf, '[default]\ntoken_file = "missing.token"\n')
    with pytest.raises(InvalidConfigError, match="cannot read the token file"):
        settings_for(resolve("pyvirt+tls://kvm1/"))


@pytest.mark.parametrize(
    ("text", "mode", "match"),
    [('[default]\ntoken = "t"\n', 0o644, "can be read by other users"),
     ("[default]\ntokn = 1\n", 0o600, "unknown key 'tokn'"),
     ("[default\n", 0o600, "cannot parse"),
     ('default = "x"\n', 0o600, "must be tables")],
)  # fmt: skip
def test_bad_files(conf: Path, text: str, mode: int, match: str) -> None:
    _write(conf, text, mode)
    with pytest.raises(InvalidConfigError, match=match):
        settings_for(resolve("pyvirt+tls://h/"))


def test_ssh_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYVIRT_SSH_COMMAND", "myssh -F /dev/null")
    t = resolve("pyvirt+ssh://bob@-oProxyCommand=x:2222/?keyfile=/k&known_hosts=/kh&no_verify=1")
    tunnel = SSHTunnel.__new__(SSHTunnel)
    tunnel.local, tunnel.remote = Path("/tmp/l.sock"), REMOTE_SOCKET
    argv = tunnel.argv(t)
    assert argv[:3] == ["myssh", "-F", "/dev/null"]
    assert argv[-2:] == ["--", "-oproxycommand=x"]  # a host is never an option
    assert ["-L", f"/tmp/l.sock:{REMOTE_SOCKET}"] == argv[argv.index("-L") : argv.index("-L") + 2]
    for pair in (["-p", "2222"], ["-l", "bob"], ["-i", "/k"]):
        assert pair == argv[argv.index(pair[0]) : argv.index(pair[0]) + 2]
    assert "UserKnownHostsFile=/kh" in argv and "StrictHostKeyChecking=no" in argv
    assert "ExitOnForwardFailure=yes" in argv and "-N" in argv


def test_ssh_failure_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYVIRT_SSH_COMMAND", "sh -c 'echo no route to host >&2; exit 255' ssh")
    with pytest.raises(OperationFailedError, match=r"ssh exited with status 255.*no route") as e:
        SSHTunnel(resolve("pyvirt+ssh://h/"), timeout=5)
    assert "pyvirtd runs there" in (e.value.hint or "")
    monkeypatch.setenv("PYVIRT_SSH_COMMAND", "/nonexistent/ssh")
    with pytest.raises(OperationFailedError, match="cannot run /nonexistent/ssh"):
        SSHTunnel(resolve("pyvirt+ssh://h/"), timeout=5)
