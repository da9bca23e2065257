"""The web console's overview (issue 13): 1000 defined domains render within a second, the
table filters and sorts, starting a guest from it changes its state without a reload (the
daemon's event stream), the page stays responsive while 10 of the 1000 (real tiny guests)
start at once, and a freshly opened overview shows the running guests' CPU sparklines from
the daemon's history at once (one request for all the visible rows), then live samples."""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid as uuid_mod
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

import pyvirt.api
from tests.integration.test_lifecycle import domain_xml
from tests.webhelp import Web, screens_dir, web_console

pytestmark = pytest.mark.qemu

FILLERS = 1000
#: fillers started for real (each a tiny guest, like every filler's definition)
GUESTS = [f"vm{i:04d}" for i in range(1, 11)]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, tiny_image: Any) -> Iterator[Web]:
    root = Path(tmp_path_factory.mktemp("weboverview")) / "s"
    root.mkdir()
    conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
    conn.domains.define(domain_xml(tiny_image, "web1"))
    dom, _ = conn.domains.define(domain_xml(tiny_image, "vm0000"))
    # the other fillers: copies of the definition the API stored, each with its own name and
    # UUID (defining 1000 domains one by one takes a minute on a loaded 2-core machine)
    stored = root / "lib" / "qemu" / "vm0000.xml"
    text, uuid = stored.read_text(), dom.status().uuid
    for i in range(1, FILLERS - 1):
        name = f"vm{i:04d}"
        (stored.parent / f"{name}.xml").write_text(
            text.replace("<name>vm0000</name>", f"<name>{name}</name>").replace(
                uuid, str(uuid_mod.uuid4())
            )
        )
    with web_console(root, screens_dir(tmp_path_factory, "overview")) as w:
        yield w
        w.daemon.request("POST", "/api/v1/domains/web1/destroy", {})


def test_thousand_domains_render_fast(web: Web) -> None:
    page = web.visit("#/", "overview-opening")
    timing = page.wait_for_function("() => window.pyvirtOverview").json_value()
    # then the visible rows' vCPUs and memory (the definitions of shut-off domains)
    page.locator("tbody td.num", has_text="160 MiB").first.wait_for()
    web.shot("overview-1000")
    print(f"overview with {timing['rows']} domains: {timing['sincePage']:.0f} ms after the "
          f"page opened, {timing['sinceNavigation']:.0f} ms after navigation")  # fmt: skip
    steps = page.evaluate("""() => {
        const nav = performance.getEntriesByType("navigation")[0];
        const list = performance.getEntriesByType("resource")
            .find(r => r.name.includes("/domains?"));
        return {document: nav.responseEnd, scripts: nav.domContentLoadedEventEnd,
                list_start: list.startTime, list_end: list.responseEnd};
    }""")
    print("timeline (ms after navigation):", {k: round(v) for k, v in steps.items()})
    assert timing["rows"] == FILLERS
    # the overview's own work (fetch the list, build and paint the table) within a second;
    # the figure since navigation adds the TLS connection and the bundle's load (printed)
    assert timing["sincePage"] <= 1000
    assert timing["sinceNavigation"] <= 3000
    assert page.get_by_role("status").filter(has_text="VMs").inner_text() == "1000 of 1000 VMs"
    # virtualised: only the visible rows are in the document
    assert page.locator("tbody tr:not(.spacer)").count() < 80
    # sort by name, descending: the last name comes first
    page.get_by_role("button", name="Name").click()
    assert page.locator("tbody tr:not(.spacer) td.name").first.inner_text() == "web1"
    page.get_by_role("button", name="Name").click()
    assert page.locator("tbody tr:not(.spacer) td.name").first.inner_text() == "vm0000"
    # scrolling to the end shows the last rows
    page.locator(".scroller").evaluate("el => el.scrollTop = el.scrollHeight")
    page.locator("tbody td.name", has_text="web1").wait_for()
    web.shot("overview-scrolled")


def test_start_from_the_table_updates_without_reload(web: Web) -> None:
    page = web.visit("#/", "overview")
    page.wait_for_function("() => window.pyvirtOverview")
    page.evaluate("window.noReload = true")
    page.get_by_label("Filter by name").fill("web")
    row = page.locator("tbody tr", has_text="web1")
    assert page.locator("tbody tr:not(.spacer)").count() == 1
    assert row.locator(".state").inner_text() == "shut off"
    page.get_by_label("State").select_option("running")
    assert page.locator("tbody tr:not(.spacer)").count() == 0
    page.get_by_label("State").select_option("all")
    page.get_by_label("Select web1").check()
    page.get_by_role("button", name="Run").click()
    row.locator(".state", has_text="running").wait_for(timeout=30_000)
    assert page.evaluate("window.noReload") is True  # the page was not reloaded
    # vCPUs and memory of the visible rows, the CPU sparkline of the running one
    row.locator("td.num", has_text="160 MiB").wait_for(timeout=15_000)
    row.locator("svg.spark").wait_for()
    row.get_by_role("link", name="Console").wait_for()
    web.shot("overview-running")
    # Force Off from the table; the row follows
    page.get_by_role("button", name="Force Off").click()
    row.locator(".state", has_text="shut off").wait_for(timeout=30_000)
    assert web.daemon.get("/api/v1/domains/web1/state")["state"] == "shut off"


# In the page: long tasks (PerformanceObserver), keystroke in the filter → the table's rows
# replaced → the next frame, and window.__scroll(dy): scrollTop moved → the rows cover the
# visible part of the table → the next frame. Figures in ms, collected in window.__resp.
HARNESS = """() => {
  const r = window.__resp = {long: [], key: [], scroll: []};
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) r.long.push(e.duration);
  }).observe({type: "longtask"});
  const body = document.querySelector("table.vmtable tbody");
  const head = document.querySelector("table.vmtable thead th");  // sticky: th, not thead
  const scroller = document.querySelector(".scroller");
  const filter = document.querySelector("input[type=search]");
  const frame = (since, into, done) => requestAnimationFrame(() => setTimeout(() => {
    const ms = performance.now() - since;
    into.push(ms);
    if (done) done(ms);
  }, 0));
  let keyAt = null;
  filter.addEventListener("keydown", (e) => { keyAt = e.timeStamp; }, true);
  new MutationObserver(() => {
    if (keyAt === null) return;
    const since = keyAt;
    keyAt = null;
    frame(since, r.key);
  }).observe(body, {childList: true});
  const covered = () => {
    const rows = body.querySelectorAll("tr:not(.spacer)");
    if (!rows.length) return false;
    const top = head.getBoundingClientRect().bottom;
    const bottom = scroller.getBoundingClientRect().bottom;
    // (a spacer row's border may sit between the header and the first row)
    return rows[0].getBoundingClientRect().top <= top + 4 &&
      rows[rows.length - 1].getBoundingClientRect().bottom >= bottom - 4;
  };
  // (after 5 s it gives up, and the 5 s count)
  window.__scroll = (dy) => new Promise((resolve) => {
    const since = performance.now();
    scroller.scrollTop = Math.max(0, scroller.scrollTop + dy);
    const check = () => covered() || performance.now() - since > 5000
      ? frame(since, r.scroll, resolve) : requestAnimationFrame(check);
    requestAnimationFrame(check);
  });
  return true;
}"""


@pytest.fixture(scope="module")
def guests(web: Web) -> Iterator[list[str]]:
    """The 10 fillers that run (started by the tests), stopped at the end."""
    try:
        yield GUESTS
    finally:
        stoppers = [
            threading.Thread(
                target=web.daemon.request, args=("POST", f"/api/v1/domains/{n}/destroy", {})
            )
            for n in GUESTS
        ]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()


def start_all(web: Web, names: list[str]) -> tuple[list[threading.Thread], dict[str, Any]]:
    """Start ``names`` through the API, all at once (threads); returns the threads and a dict
    filled with each start's seconds (or its error)."""
    results: dict[str, Any] = {}

    def start(name: str) -> None:
        t = time.monotonic()
        r = web.daemon.request("POST", f"/api/v1/domains/{name}/start", {})
        results[name] = time.monotonic() - t if r.status == 200 else (r.status, r.body)

    threads = [threading.Thread(target=start, args=(n,)) for n in names]
    for t in threads:
        t.start()
    return threads, results


def interact(page: Any) -> None:
    """One round of a user's input: a keystroke that filters (100 rows), another that brings
    the 999 back, a scroll down and one back up (each measured by the harness)."""
    page.keyboard.press("1")
    page.wait_for_timeout(100)
    page.keyboard.press("Backspace")
    page.wait_for_timeout(100)
    page.evaluate("window.__scroll(1500)")
    page.evaluate("window.__scroll(-1500)")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _browser_pids() -> list[int]:
    """This test's chromium processes (descendants of this process)."""
    parent: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            names[int(entry.name)] = text[text.index("(") + 1 : text.rindex(")")]
            parent[int(entry.name)] = int(text.rsplit(")", 1)[1].split()[1])

    def ours(pid: int) -> bool:
        while pid > 1:
            if pid == os.getpid():
                return True
            pid = parent.get(pid, 1)
        return False

    return [p for p, n in names.items() if "chrom" in n and ours(p)]


class Figures:
    """The harness's figures since the last call, with the CPU time the browser (all its
    processes) and pyvirtd used meanwhile, as a share of one CPU."""

    def __init__(self, web: Web) -> None:
        self.page = web.page
        self.pids = {"browser": _browser_pids(), "pyvirtd": [web.daemon.proc.pid]}
        self.since = time.monotonic()
        self.cpu = {k: _cpu_seconds(v) for k, v in self.pids.items()}

    def take(self) -> dict[str, Any]:
        got: dict[str, Any] = self.page.evaluate(
            "() => { const r = window.__resp; const out = {...r};"
            " r.long = []; r.key = []; r.scroll = []; return out; }"
        )
        now = time.monotonic()
        cpu = {k: _cpu_seconds(v) for k, v in self.pids.items()}
        got["seconds"] = now - self.since
        got["cpu"] = {k: (cpu[k] - self.cpu[k]) / (now - self.since) for k in cpu}
        self.since, self.cpu = now, cpu
        return got


def describe(got: dict[str, Any]) -> str:
    def fig(values: list[float]) -> str:
        return f"median {statistics.median(values):.0f} ms, max {max(values):.0f} ms"

    long = got["long"]
    cpu = ", ".join(f"{k} {v:.0%}" for k, v in got["cpu"].items())
    return (f"{got['seconds']:.0f} s, CPU {cpu}: "
            f"{len(got['key'])} keystrokes → table updated {fig(got['key'])}; "
            f"{len(got['scroll'])} scrolls → rows painted {fig(got['scroll'])}; "
            f"{len(long)} long tasks"
            f"{', longest ' + format(max(long), '.0f') + ' ms' if long else ''}")  # fmt: skip


def test_stays_responsive_while_ten_guests_start(web: Web, guests: list[str]) -> None:
    page = web.visit("#/", "overview-before-starts")
    timing = page.wait_for_function("() => window.pyvirtOverview").json_value()
    print(f"overview with {timing['rows']} domains: {timing['sincePage']:.0f} ms")
    filt = page.get_by_label("Filter by name")
    filt.fill("vm0")  # 999 rows; the 10 guests among the first
    page.evaluate(HARNESS)
    filt.focus()
    figures = Figures(web)
    # the same input with no guest starting: the machine's floor, for comparison
    quiet_end = time.monotonic() + 5
    while time.monotonic() < quiet_end:
        interact(page)
    quiet = figures.take()
    print("quiet:", describe(quiet))

    threads, results = start_all(web, guests)
    began = time.monotonic()
    settled: float | None = None
    running = page.locator("tbody tr:not(.spacer) .state.running")
    while True:
        interact(page)
        if settled is None and not any(t.is_alive() for t in threads):
            settled = time.monotonic()
        # sampled for 5 s more: the guests boot, events and sparkline data arrive
        if settled is not None and time.monotonic() - settled > 5 and running.count() == 10:
            break
        assert time.monotonic() - began < 240, f"starts: {results}"
    got = figures.take()
    assert all(isinstance(v, float) for v in results.values()), results
    web.shot("overview-ten-started")
    assert filt.input_value() == "vm0"
    print(f"while 10 guests started (each start {min(results.values()):.1f}–"
          f"{max(results.values()):.1f} s):", describe(got))  # fmt: skip
    keys, scrolls, long = got["key"], got["scroll"], got["long"]
    assert len(keys) >= 8 and len(scrolls) >= 8
    # the page's own work: the browser's CPU time while 10 guests start stays what its
    # inputs cost when quiet (with room for being starved: caches, more frames) plus 5 % of
    # a CPU for the rest (their events, state requests, details and sparklines); rebuilding
    # the table per event or refetching the list would blow it
    inputs = len(keys) + len(scrolls)
    quiet_per_input = (
        quiet["cpu"]["browser"] * quiet["seconds"] / (len(quiet["key"]) + len(quiet["scroll"]))
    )
    used = got["cpu"]["browser"] * got["seconds"]
    allowed = 2 * inputs * quiet_per_input + 0.05 * got["seconds"]
    print(f"browser CPU: quiet {quiet_per_input * 1000:.0f} ms per input; while starting "
          f"{used:.2f} s for {inputs} inputs ({used / inputs * 1000:.0f} ms each), "
          f"allowed {allowed:.2f} s")  # fmt: skip
    assert used <= allowed
    # wall-clock bounds that only catch a page that freezes: on the shared 2-core machine,
    # where the 10 TCG guests booting and other tests put the load average at 10-20, the
    # latencies are mostly the browser waiting for a CPU (the quiet phase gives its own
    # figures); a scroll's figure includes two frames by construction
    assert statistics.median(keys) <= 500, keys
    assert statistics.median(scrolls) <= 600, scrolls
    assert max(long, default=0) <= 1000, long


def points(page: Any, name: str) -> int:
    """How many points the sparkline of ``name``'s row has (0: none)."""
    line = page.locator(f"tbody tr[data-name='{name}'] svg.spark polyline")
    if not line.count():
        return 0
    return len((line.get_attribute("points") or "").split())


def test_sparklines_from_history(web: Web, guests: list[str]) -> None:
    """A freshly opened overview shows the running guests' last minutes at once (the daemon
    samples every 5 s), fetched in one request for all the visible rows; then live samples."""
    stopped = [n for n in guests if web.daemon.get(f"/api/v1/domains/{n}/state")["state"]
               != "running"]  # fmt: skip
    for t in start_all(web, stopped)[0]:
        t.join()
    deadline = time.monotonic() + 60
    while True:  # three samples of each guest in the daemon's history
        hist = web.daemon.get(f"/api/v1/stats/history/cpu?domains={','.join(guests)}")
        if all(sum(v is not None for v in hist.get(n, {}).get("cpu", [])) >= 3 for n in guests):
            break
        assert time.monotonic() < deadline, hist
        time.sleep(1)
    history: list[str] = []

    def seen(request: Any) -> None:
        if "/stats/history/cpu" in request.url:
            history.append(request.url)

    page = web.page
    page.on("request", seen)
    try:
        opened = time.monotonic()
        page = web.visit("#/", "overview-sparklines-opening")
        page.wait_for_function("() => window.pyvirtOverview")
        # three points at once: computed in the browser, they would take three polls (9 s)
        for name in guests:
            deadline = time.monotonic() + 8
            while points(page, name) < 3:
                assert time.monotonic() < deadline, f"{name}: {points(page, name)} points"
                time.sleep(0.1)
        shown = time.monotonic() - opened
        web.shot("overview-sparklines")
        first = parse_qs(urlparse(history[0]).query)
        assert set(guests) <= set(first["domains"][0].split(",")), first
        assert first["points"] == ["60"]
        # one request per refresh of the visible rows (on opening, every 3 s), not one per row
        assert len(history) <= 2 + int(shown / 3), history
        print(f"sparklines of 10 guests shown {shown:.1f} s after opening, "
              f"{len(history)} history request(s)")  # fmt: skip
        # live: new samples (every 5 s) are appended
        before = {n: points(page, n) for n in guests}
        deadline = time.monotonic() + 20
        while not all(points(page, n) > before[n] for n in guests):
            assert time.monotonic() < deadline, (before, {n: points(page, n) for n in guests})
            time.sleep(0.5)
        later = parse_qs(urlparse(history[-1]).query)
        assert float(later["since"][0]) > 0  # only the samples it does not have yet
    finally:
        page.remove_listener("request", seen)
