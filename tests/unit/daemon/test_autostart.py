"""pyvirtd's autostart: networks, then pools, then domains; a failure is logged, not fatal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyvirt.api.domains import State
from pyvirt.daemon.autostart import autostart


@dataclass
class Row:
    name: str
    autostart: bool
    active: bool = False
    state: str = "inactive"


class Collection:
    def __init__(self, kind: str, rows: list[Row], log: list[str]) -> None:
        self.kind, self.rows, self.log = kind, rows, log

    def list(self, **kw: Any) -> list[Row]:
        if self.kind == "domain":
            assert kw == {"autostart": True, "states": [State.SHUTOFF]}
        return self.rows

    def get(self, name: str) -> Any:
        collection = self

        class Handle:
            def start(self) -> None:
                if name == "broken":
                    raise RuntimeError("cannot start")
                collection.log.append(f"{collection.kind} {name}")

        return Handle()


class Conn:
    def __init__(self, log: list[str]) -> None:
        self.networks = Collection(
            "network", [Row("default", True), Row("up", True, active=True), Row("off", False)], log
        )
        self.pools = Collection(
            "pool", [Row("images", True), Row("run", True, state="running"), Row("broken", True)],
            log,
        )  # fmt: skip
        self.domains = Collection("domain", [Row("web1", True), Row("web2", True)], log)


def test_order_and_failures() -> None:
    log: list[str] = []
    assert autostart(Conn(log)) == 4  # type: ignore[arg-type]
    assert log == ["network default", "pool images", "domain web1", "domain web2"]
