"""The one table of bounds: exact messages, and the name rules for new objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model.devices.interface import mac_problem
from pyvirt.model.limits import (
    check_memory_kib,
    check_memtune_kib,
    check_vcpus,
    check_volume_bytes,
    machine_max_vcpus,
)
from pyvirt.state.names import check_new_name, max_domain_name_bytes
from pyvirt.state.paths import StatePaths


@pytest.mark.parametrize(
    ("machine", "top"),
    [(None, 255), ("pc", 255), ("pc-i440fx-7.2", 255), ("q35", 288), ("pc-q35-7.2", 288),
     ("microvm", 288), ("isapc", 1), ("virt", 4096)],
)  # fmt: skip
def test_machine_max_vcpus(machine: str | None, top: int) -> None:
    assert machine_max_vcpus(machine) == top
    assert check_vcpus(top, machine) == top
    with pytest.raises(InvalidConfigError) as exc:
        check_vcpus(top + 1, machine)
    assert str(exc.value) == (
        f"vcpu count {top + 1} is out of range 1-{top} for machine '{machine or 'pc'}'"
    )


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (check_memory_kib, 0, "memory size must be greater than 0"),
        (check_memory_kib, 17 * 1024**3, "memory size 17 TiB is larger than the 16 TiB limit"),
        (check_memtune_kib, 2**53, f"memtune limit {2**53} KiB is larger than the limit of "
         f"{2**53 - 1} KiB"),
        (check_volume_bytes, -1, "capacity -1 is negative"),
        (check_volume_bytes, 2**61, "capacity 2048.00 PiB is larger than the limit of "
         "1024.00 PiB"),
    ],
)  # fmt: skip
def test_bounds(check: object, value: int, message: str) -> None:
    assert callable(check)
    with pytest.raises(InvalidConfigError) as exc:
        check(value)
    assert str(exc.value) == message


def test_bounds_accept_the_limits() -> None:
    assert check_memory_kib(16 * 1024**3) == 16 * 1024**3
    assert check_volume_bytes(2**60) == 2**60


@pytest.mark.parametrize(
    ("mac", "why"),
    [("00:00:00:00:00:00", "is all zeros"), ("FF:FF:FF:FF:FF:FF", "is the broadcast address"),
     ("33:33:00:00:00:01", "is a multicast address"), ("52:54:00", "is not a valid MAC address"),
     ("52:54:00:12:34:56", None)],
)  # fmt: skip
def test_mac_problem(mac: str, why: str | None) -> None:
    assert mac_problem(mac) == why


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".x", "domain name '.x' must not start with '.'"),
        ("x.json", "domain name 'x.json' must not end in '.json'"),
        ("x.tmp", "domain name 'x.tmp' must not end in '.tmp'"),
        ("a/b", "domain name 'a/b' is not valid: it must not contain '/' or be '.' or '..'"),
        ("a\x01", "domain name 'a\\x01' contains control characters"),
    ],
)
def test_new_names(name: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        check_new_name(name)
    assert str(exc.value) == message


def test_socket_path_budget() -> None:
    paths = StatePaths.from_root(Path("/tmp/pvroot"))
    limit = max_domain_name_bytes(paths)
    assert limit == 108 - len("/tmp/pvroot/run/qemu") - 23
    assert check_new_name("x" * limit, paths=paths)
    with pytest.raises(InvalidConfigError) as exc:
        check_new_name("x" * (limit + 1), paths=paths)
    assert str(exc.value) == (
        f"domain name is {limit + 1} bytes, longer than the {limit} bytes that fit in a socket "
        "path under /tmp/pvroot/run/qemu"
    )
    assert check_new_name("x" * 150, kind="pool", paths=paths)  # pools have no sockets
