"""virt-install's comma syntax: parsing and the errors bad options give."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.install import options as o
from pyvirt.install.cmdline import build_spec


def test_split_quotes_and_bare_words() -> None:
    pairs = o.split("--boot", 'hd,kernel_args="console=ttyS0,115200 quiet",menu=on')
    assert pairs == [("hd", None), ("kernel_args", "console=ttyS0,115200 quiet"), ("menu", "on")]
    with pytest.raises(InvalidConfigError, match="unterminated quote"):
        o.split("--boot", 'kernel_args="x')


def test_disk_seed_spelling_and_keys() -> None:
    d = o.parse_disk("/kvmtest/centos-6.8.qcow2,format=qcow2")
    assert d is not None and d.path == "/kvmtest/centos-6.8.qcow2" and d.format == "qcow2"
    d = o.parse_disk("path=/x.img,size=2.5,bus=sata,cache=none,io=native,sparse=no,boot.order=2")
    assert d is not None
    assert (d.size_gb, d.bus, d.cache, d.io, d.sparse, d.boot_order) == (
        2.5, "sata", "none", "native", False, 2,
    )  # fmt: skip
    d = o.parse_disk("vol=default/base.qcow2")
    assert d is not None and (d.pool, d.vol) == ("default", "base.qcow2")
    assert o.parse_disk("none") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path=/x.qcow2,size=-1", "size must be a positive number"),
        ("path=/x.qcow2,size=big", "is not a number of GiB"),
        ("path=/x.qcow2,frobnicate=1", "unknown option 'frobnicate'"),
        ("size=3", "give path=FILE"),
        ("/x,device=tape", "is not disk, cdrom"),
        ("/x,sparse=maybe", "is not on/off"),
    ],
)
def test_disk_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        o.parse_disk(text)


def test_network_forms() -> None:
    n = o.parse_network("network=default,model=e1000,mac=52:54:00:aa:bb:cc")
    assert n is not None and (n.type, n.source, n.model, n.mac) == (
        "network", "default", "e1000", "52:54:00:aa:bb:cc",
    )  # fmt: skip
    n = o.parse_network("bridge=br0")
    assert n is not None and (n.type, n.source) == ("bridge", "br0")
    n = o.parse_network("type=user")
    assert n is not None and n.type == "user" and n.source is None
    n = o.parse_network("bridge:br1")
    assert n is not None and (n.type, n.source) == ("bridge", "br1")
    assert o.parse_network("none") is None
    with pytest.raises(InvalidConfigError, match="is not network, bridge or user"):
        o.parse_network("type=vde")


def test_graphics_vcpus_boot_cpu() -> None:
    g = o.parse_graphics("vnc,listen=0.0.0.0,keymap=en-us,password=s3cret,port=5905")
    assert (g.type, g.listen, g.keymap, g.password, g.port) == (
        "vnc", "0.0.0.0", "en-us", "s3cret", 5905,
    )  # fmt: skip
    assert o.parse_graphics("none").type == "none"
    with pytest.raises(InvalidConfigError, match="spice is not supported"):
        o.parse_graphics("spice")
    v = o.parse_vcpus("4,maxvcpus=8,sockets=2,cores=2,threads=2")
    assert (v.count, v.maxvcpus, v.sockets, v.cores, v.threads) == (4, 8, 2, 2, 2)
    b = o.parse_boot("cdrom,hd,menu=on")
    assert b.order == ["cdrom", "hd"] and b.menu is True
    assert o.parse_boot("uefi").uefi
    c = o.parse_cpu("Skylake-Client,+vmx,-hle")
    assert (c.mode, c.model, c.features) == (
        "custom", "Skylake-Client", [("require", "vmx"), ("disable", "hle")],
    )  # fmt: skip


def test_build_spec_errors() -> None:
    with pytest.raises(InvalidConfigError, match="at least 1 vCPU"):
        build_spec({"name": "x", "vcpus": "0"})
    with pytest.raises(InvalidConfigError, match="not a number of MiB"):
        build_spec({"name": "x", "memory": "lots"})
    with pytest.raises(InvalidConfigError, match="MAC address '01:00:00:00:00:00'"):
        build_spec({"name": "x", "mac": ["01:00:00:00:00:00"]})
    with pytest.raises(InvalidConfigError, match="is not a UUID"):
        build_spec({"name": "x", "uuid": "nope"})
    with pytest.raises(InvalidConfigError, match="--network none cannot be combined"):
        build_spec({"name": "x", "network": ["none", "type=user"]})
    spec = build_spec({"name": "x", "os_variant": "detect=on,require=off", "memory": "512"})
    assert spec.os_detect and not spec.os_require and spec.memory_mib == 512
