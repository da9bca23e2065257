"""``pyvirt connect URI`` outside the shell: it checks the URI and says what it reaches; in
the shell it stays silent (virsh's behaviour)."""

from __future__ import annotations

from pyvirt.cli.commands.conn import describe
from pyvirt.client.uri import resolve
from tests.conftest import Pyvirt


def test_connect_outside_the_shell(pyvirt: Pyvirt) -> None:
    uri = f"pyvirt:///embed?root={pyvirt.root}"
    res = pyvirt("connect", uri)
    assert (
        res.out == f"Connected to {uri}: in-process, no daemon (state directory: {pyvirt.root})\n"
    )
    res = pyvirt("connect", "nosuch://x", check=False)
    assert res.rc == 1 and res.err.startswith("error: connection URI 'nosuch://x' is not supported")
    res = pyvirt("connect", f"pyvirt+unix://{pyvirt.root}/none.sock", check=False)
    assert res.rc == 1 and res.out == "" and "none.sock" in res.err
    # in the shell: no line of its own
    assert pyvirt(input=f"connect {uri}\necho done\n").out == "done\n"


def test_describe_every_kind() -> None:
    assert describe(resolve("pyvirt+unix:///run/x.sock")) == (
        "Connected to pyvirt+unix:///run/x.sock: pyvirtd on the unix socket /run/x.sock"
    )
    assert describe(resolve("pyvirt+tls://h.example/")).endswith(
        "pyvirtd at h.example:16514 over TLS"
    )
    assert describe(resolve("pyvirt+ssh://me@h.example:2222/")).endswith(
        "pyvirtd at me@h.example:2222 over ssh"
    )
