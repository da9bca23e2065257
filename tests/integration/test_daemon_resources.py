"""Networks, pools, volumes, node devices and the host through a real pyvirtd, with the
remote API classes (``pyvirt.api.remote``) as the client; bad input leaves the state alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import pyvirt.api
from pyvirt.api.remote.host import RemoteHost
from pyvirt.api.remote.networks import RemoteNetworkCollection
from pyvirt.api.remote.nodedevs import RemoteNodeDeviceCollection
from pyvirt.api.remote.pools import RemotePoolCollection
from pyvirt.errors import InvalidStateError, NotFoundError, UnsupportedError
from pyvirt.state.paths import StatePaths
from tests.daemonhelp import RunningDaemon, pyvirtd
from tests.daemonhelp import daemon as daemon
from tests.integration.nethelp import netns

NET = """<network><name>{name}</name><forward mode='nat'/><bridge name='{br}'/>
<ip address='10.77.3.1' prefix='24'><dhcp><range start='10.77.3.2' end='10.77.3.50'/></dhcp></ip>
</network>"""


def state_files(root: Path) -> dict[str, bytes]:
    """Every definition and state file (not the daemon's own socket, lock and logs)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] not in ("log",) and p.name not in ("pyvirtd.lock",):
            out[str(rel)] = p.read_bytes()
    return out


def test_networks_over_rest(state_root: Path) -> None:
    with netns() as ns, pyvirtd(state_root, netns=ns) as d:
        nets = RemoteNetworkCollection(d.client())
        assert [n.name for n in nets.list()] == ["default"]
        net, warnings = nets.define(NET.format(name="lan", br="pvbr3"))
        assert net.name == "lan" and warnings == []
        assert StatePaths.from_root(state_root).network_xml("lan").exists()
        info = nets.get("lan").info()
        assert (info.active, info.persistent, info.bridge) == (False, True, "pvbr3")
        assert nets.get(info.uuid).name == "lan"
        rev = net.revision()
        xml = net.xml_desc()
        assert "<bridge name='pvbr3'" in xml or 'name="pvbr3"' in xml
        net.redefine(xml, expect_revision=rev)  # same content: same revision
        changed = xml.replace("10.77.3.50", "10.77.3.60")
        net.redefine(changed, expect_revision=rev)  # still at rev: accepted
        with pytest.raises(InvalidStateError, match="changed underneath"):
            net.redefine(xml, expect_revision=rev)  # rev is stale now
        assert "10.77.3.60" in net.xml_desc()
        net.start()
        links = subprocess.run(["ip", "netns", "exec", ns, "ip", "-br", "link"],
                               capture_output=True, text=True).stdout  # fmt: skip
        assert "pvbr3" in links
        assert net.info().active
        assert net.dhcp_leases() == []
        assert [n.name for n in nets.list(active=True)] == ["lan"]
        net.set_autostart(True)
        assert net.info().autostart
        net.destroy()
        links = subprocess.run(["ip", "netns", "exec", ns, "ip", "-br", "link"],
                               capture_output=True, text=True).stdout  # fmt: skip
        assert "pvbr3" not in links
        with pytest.raises(UnsupportedError):
            net.update("add", "ip-dhcp-host", "<host mac='52:54:00:00:00:09' ip='10.77.3.9'/>")
        net.undefine()
        with pytest.raises(NotFoundError):
            nets.get("lan")
        # a transient network: no ETag, gone after destroy
        tnet = nets.create(NET.format(name="tmp", br="pvbr4"))
        assert not tnet.info().persistent
        assert "etag" not in d.request("GET", "/api/v1/networks/tmp/xml").headers
        tnet.destroy()
        assert [n.name for n in nets.list()] == ["default"]


def test_pools_and_volumes_over_rest(daemon: RunningDaemon, tmp_path: Path) -> None:
    target = tmp_path / "pool"
    pools = RemotePoolCollection(daemon.client())
    xml = f"<pool type='dir'><name>scratch</name><target><path>{target}</path></target></pool>"
    pool, _ = pools.define(xml)
    assert pool.info().state == "inactive"
    pool.build()
    assert target.is_dir()
    pool.start()
    assert "scratch" in [p.name for p in pools.list()]
    vol = pool.create_volume("disk0", 8 << 20, format="qcow2")
    assert (target / "disk0").exists()
    assert vol.info().format == "qcow2" and vol.info().capacity == 8 << 20
    assert [v.name for v in pool.volumes()] == ["disk0"]
    assert "<format type='qcow2'/>" in vol.xml_desc() or "qcow2" in vol.xml_desc()
    assert vol.resize(16 << 20).capacity == 16 << 20
    assert pool.volume("disk0").info().capacity == 16 << 20
    raw = pool.create_volume("raw0", 1 << 20, format="raw", allocation=1 << 20)
    assert (target / "raw0").stat().st_size == 1 << 20
    with pytest.raises(NotFoundError):
        pool.volume("nope")
    # a stale If-Match changes nothing
    rev = pool.revision()
    stored = StatePaths.from_root(daemon.root).pool_xml("scratch")
    pool.redefine(xml.replace("<target>", "<source/><target>"), expect_revision=rev)
    rev2 = pool.revision()
    content = stored.read_bytes()
    with pytest.raises(InvalidStateError, match="changed underneath"):
        pool.redefine(xml, expect_revision=rev)
    assert stored.read_bytes() == content and pool.revision() == rev2
    (target / "outside").write_bytes(b"x")
    pool.refresh()
    assert {v.name for v in pool.volumes()} == {"disk0", "raw0", "outside"}
    raw.delete()
    assert not (target / "raw0").exists()
    pool.set_autostart(True)
    assert pool.info().autostart
    pool.destroy()
    assert "scratch" not in [p.name for p in pools.list()]
    assert "scratch" in [p.name for p in pools.list(inactive=True)]
    pool.undefine()
    assert "scratch" not in [p.name for p in pools.list(all=True)]


def test_host_and_nodedevs_match_the_embedded_api(daemon: RunningDaemon) -> None:
    local = pyvirt.api.open("pyvirt:///embed")
    host = RemoteHost(daemon.client())
    assert host.nodeinfo() == local.host.nodeinfo()
    assert host.versions() == local.host.versions()
    assert host.capabilities().lstrip().startswith("<capabilities>")
    assert host.memstats().total == local.host.memstats().total
    assert [c.cell for c in host.freecell()] == [c.cell for c in local.host.freecell()]
    devs = RemoteNodeDeviceCollection(daemon.client())
    remote_list = devs.list()
    assert [d.to_json() for d in remote_list] == [d.to_json() for d in local.nodedevs.list()]
    nets = devs.list(caps=("net",))
    assert nets and all("net" in d.caps for d in nets)
    assert devs.get("computer").xml_desc() == local.nodedevs.get("computer").xml_desc()
    with pytest.raises(NotFoundError):
        devs.get("pci_ffff_ff_1f_7")
    with pytest.raises(UnsupportedError):
        devs.tree()


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<network><name>&lol3;</name></network>"""


def test_bad_input_is_one_4xx_and_writes_nothing(daemon: RunningDaemon, tmp_path: Path) -> None:
    xml = f"<pool type='dir'><name>p</name><target><path>{tmp_path}/p</path></target></pool>"
    assert daemon.request("POST", "/api/v1/pools", xml).status == 201
    assert daemon.request("GET", "/api/v1/networks").status == 200  # the default network
    before = state_files(daemon.root)
    cases: list[tuple[str, str, object, dict[str, str] | None]] = [
        ("POST", "/api/v1/networks", BOMB, None),
        ("POST", "/api/v1/pools", BOMB.replace("network", "pool"), None),
        ("POST", "/api/v1/networks", "<network><name>x</name>", None),
        ("POST", "/api/v1/pools", "not xml at all", None),
        ("POST", "/api/v1/pools", "<pool type='dir'><name>../../etc</name></pool>", None),
        ("POST", "/api/v1/networks", "<network><name>a/b</name></network>", None),
        ("POST", "/api/v1/pools", b"<" * (5 << 20), {"Content-Type": "application/xml"}),
        ("PUT", "/api/v1/pools/p/autostart", {"enabled": True, "extra": 1}, None),
        ("PUT", "/api/v1/pools/p/autostart", {"enabled": "maybe"}, None),
        ("POST", "/api/v1/pools/p/volumes", {"name": "v", "capacity": -5}, None),
        ("POST", "/api/v1/pools/p/start", b"{not json", {"Content-Type": "application/json"}),
        ("GET", "/api/v1/pools/..%2F..%2Fetc", None, None),
        ("GET", "/api/v1/pools/%2E%2E/xml", None, None),
        ("DELETE", "/api/v1/pools/p%5C..", None, None),
        ("PUT", "/api/v1/pools/p/xml", xml.replace("<name>p", "<name>q"), None),
        ("PUT", "/api/v1/pools/p/xml", xml, {"If-Match": '"0123456789abcdef"'}),
        ("GET", "/api/v1/host/freecell?cell=-1", None, None),
        ("GET", "/api/v1/nodedevs?cap=bogus", None, None),
    ]
    for method, url, body, headers in cases:
        r = daemon.request(method, url, body, headers)  # type: ignore[arg-type]
        assert 400 <= r.status < 500, (method, url, r.status, r.body[:300])
        doc = r.json()
        assert set(doc) == {"error", "hint", "code"}, doc
        assert doc["error"] and "\n" not in doc["error"], doc
    assert state_files(daemon.root) == before
    assert daemon.proc.poll() is None


def _fill(directory: Path) -> Path:
    """Fill the file system holding ``directory``; returns the filler file."""
    filler = directory / ".filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def _defs(config: Path) -> dict[str, bytes]:
    return {str(p.relative_to(config)): p.read_bytes() for p in sorted(config.rglob("*"))
            if p.is_file() and p.name != ".filler"}  # fmt: skip


def test_full_and_read_only_state_dir(state_root: Path, tmp_path: Path) -> None:
    """The daemon's definitions live on a 1 MiB tmpfs: full, then read-only. Each write is
    refused with one clear line, the stored definitions stay whole, no temporary file is
    left, and the same requests work once there is room again."""
    config = StatePaths.from_root(state_root).config
    config.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=200", "tmpfs", str(config)],
                   check=True)  # fmt: skip
    try:
        with pyvirtd(state_root) as d:
            pool = (f"<pool type='dir'><name>{{}}</name>"
                    f"<target><path>{tmp_path}/{{}}</path></target></pool>")  # fmt: skip
            net = "<network><name>{}</name><bridge name='pvdf{}'/></network>"
            assert d.request("POST", "/api/v1/pools", pool.format("p1", "p1")).status == 201
            assert d.request("POST", "/api/v1/networks", net.format("n1", 1)).status == 201
            before = _defs(config)
            filler = _fill(config)
            writes = [
                ("POST", "/api/v1/pools", pool.format("p2", "p2"), None),
                ("PUT", "/api/v1/pools/p1/xml", pool.format("p1", "p1b"), None),
                ("POST", "/api/v1/networks", net.format("n2", 2), None),
            ]
            for method, url, body, headers in writes:
                r = d.request(method, url, body, headers)
                doc = r.json()
                assert r.status in (500, 507), (url, r.status, doc)
                assert "disk is full" in doc["error"] or "no space" in doc["error"], doc
                assert doc["code"] == "operation_failed" and "\n" not in doc["error"]
                assert "bug" not in (doc["hint"] or "")
            assert _defs(config) == before  # nothing torn, no temporary files left
            filler.unlink()
            subprocess.run(["mount", "-o", "remount,ro", str(config)], check=True)
            # (a symlink fits in a full tmpfs, so autostart is only refused read-only)
            writes.append(("PUT", "/api/v1/pools/p1/autostart", {"enabled": True}, None))
            for method, url, body, headers in writes:
                r = d.request(method, url, body, headers)
                doc = r.json()
                assert r.status == 503, (url, r.status, doc)
                assert "read-only" in doc["error"] and "\n" not in doc["error"], doc
            assert _defs(config) == before
            assert d.request("GET", "/api/v1/pools/p1").status == 200  # reads still work
            subprocess.run(["mount", "-o", "remount,rw", str(config)], check=True)
            for method, url, body, headers in writes:
                assert d.request(method, url, body, headers).status < 300, url
            assert d.proc.poll() is None
    finally:
        subprocess.run(["umount", "-l", str(config)], check=False)
