"""The consoles page in a real browser (Playwright + Debian's chromium) against a real pyvirtd
(TLS listener, a logged-in user) and a real guest: the graphical console (noVNC) shows the
guest's VGA screen and follows it, the serial console (xterm.js) runs a command, key-to-echo
latency is measured in the page, and refused WebSockets stay refused.

Screenshots go to the module's screens directory (``$PYVIRT_TEST_SCREENS`` when set).
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt, kill_leftovers
from tests.integration.test_console_relay import install_console_guest
from tests.integration.test_install import wait_console

webhelp = pytest.importorskip("tests.webhelp")

pytestmark = pytest.mark.qemu

NAME = "cons"
#: in-page: how many pixels of the graphical console differ from its first pixel, and a hash
CANVAS_STATS = """(sel) => {
  const c = document.querySelector(sel);
  if (!c || !c.width) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let differ = 0, hash = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) differ++;
    hash = (hash * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) | 0;
  }
  return {width: c.width, height: c.height, differ, hash};
}"""
VNC_CANVAS = "section[data-kind=vnc] canvas"
SERIAL_ROWS = "section[data-kind=serial] .xterm-rows"


@pytest.fixture(scope="module")
def web(tiny_image: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = Path(tempfile.mkdtemp(prefix="pv", dir="/tmp"))
    screens = webhelp.screens_dir(tmp_path_factory, "web_console")
    pv = Pyvirt(root)
    try:
        with webhelp.web_console(root, screens) as w:
            install_console_guest(pv, tiny_image, NAME, vga=True)
            wait_console(pv, NAME, "PYVIRT-TINY-READY", 120)
            w.pv = pv
            yield w
            pv("destroy", NAME, check=False)
    finally:
        kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


def canvas(page: Any) -> dict[str, int]:
    stats: dict[str, int] | None = page.evaluate(CANVAS_STATS, VNC_CANVAS)
    assert stats is not None
    return stats


def serial_text(page: Any) -> str:
    return str(page.locator(SERIAL_ROWS).inner_text())


def test_graphical_and_serial_consoles(web: Any) -> None:
    page = web.page
    webhelp.goto(page, f"{web.base}/ui/console.html?domain={NAME}&kind=vnc")
    page.locator("section[data-kind=vnc][data-state=connected]").wait_for(timeout=20_000)
    page.wait_for_function(f"() => ({CANVAS_STATS})('{VNC_CANVAS}')?.differ > 100",
                           timeout=20_000)  # fmt: skip
    first = canvas(page)
    assert first["width"] >= 640 and first["height"] >= 400  # the guest's VGA screen
    web.shot("vnc-console")
    # a second console as a tab, opened from the page's form
    page.get_by_label("Domain").fill(NAME)
    page.get_by_label("Console", exact=True).select_option("serial")
    page.get_by_role("button", name="Open", exact=True).click()
    page.locator("section[data-kind=serial][data-state=connected]").wait_for(timeout=20_000)
    tabs = page.get_by_role("tab")
    assert tabs.count() == 2
    assert page.get_by_role("tab", name=f"{NAME} (serial)").get_attribute("aria-selected") == "true"
    page.locator("section[data-kind=serial] .xterm").click()
    page.keyboard.press("Enter")
    page.keyboard.type("echo PYVIRT-WEB-$((6*7))\n")
    page.wait_for_function(f"() => document.querySelector('{SERIAL_ROWS}')"
                           ".innerText.includes('PYVIRT-WEB-42')", timeout=20_000)  # fmt: skip
    web.shot("serial-console")
    # the guest prints on its VGA console (typed in the serial console): the canvas follows
    page.keyboard.type("for i in 1 2 3; do echo PYVIRT-VGA-HELLO-$i; done >/dev/tty0\n")
    page.get_by_role("tab", name=f"{NAME} (graphical)").click()
    # (more than a blinking cursor: three lines of text are thousands of pixels)
    page.wait_for_function(
        f"() => ({CANVAS_STATS})('{VNC_CANVAS}').differ - {first['differ']} > 1000",
        timeout=20_000,
    )
    after = canvas(page)
    assert after["differ"] > 100 and after["hash"] != first["hash"], after  # not blank
    web.shot("vnc-console-after-print")
    # the toolbar's screenshot is the canvas as a PNG download
    with page.expect_download() as dl:
        page.get_by_role("button", name="Screenshot").click()
    png = Path(dl.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and dl.value.suggested_filename.startswith(NAME)


def test_serial_key_echo_latency(web: Any) -> None:
    """Key → echo on the serial console, measured in the page: keydown (performance.now())
    until xterm.js has the echoed character in its rows."""
    page = web.page
    webhelp.goto(page, f"{web.base}/ui/console.html?domain={NAME}&kind=serial")
    page.locator("section[data-kind=serial][data-state=connected]").wait_for(timeout=20_000)
    page.locator("section[data-kind=serial] .xterm").click()
    page.keyboard.press("Enter")  # a fresh prompt (not ^U: Ctrl+U is a browser shortcut)
    page.keyboard.type(":#")  # a comment to type on (no trailing blank: xterm trims it)
    try:
        page.wait_for_function(f"() => document.querySelector('{SERIAL_ROWS}').textContent"
                               ".includes(':#')", timeout=10_000)  # fmt: skip
    finally:
        web.shot("serial-latency")
    page.evaluate("""(sel) => {
      const rows = document.querySelector(sel);
      window.__lat = {typed: ':#', t0: 0, got: []};
      document.addEventListener('keydown', () => { window.__lat.t0 = performance.now(); },
                                {capture: true});
      new MutationObserver(() => {
        const l = window.__lat;
        if (l.t0 && rows.textContent.includes(l.typed)) {
          l.got.push(performance.now() - l.t0);
          l.t0 = 0;
        }
      }).observe(rows, {subtree: true, childList: true, characterData: true});
    }""", SERIAL_ROWS)  # fmt: skip
    keys = "x7k3q9w2v5m4"
    for i, key in enumerate(keys):
        page.evaluate("(k) => { window.__lat.typed += k; }", key)
        page.keyboard.press(key)
        page.wait_for_function(f"() => window.__lat.got.length === {i + 1}", timeout=5_000)
    got = sorted(page.evaluate("() => window.__lat.got"))
    page.keyboard.press("Enter")  # ':' with a comment: does nothing
    median = got[len(got) // 2]
    print(f"serial key -> echo in the browser: median {median:.1f} ms, "
          f"min {got[0]:.1f} ms, max {got[-1]:.1f} ms over {len(got)} keys")  # fmt: skip
    assert median <= 100


WS_TRY = """async ([url, proto]) => new Promise((resolve) => {
  const ws = new WebSocket(url, proto ? [proto] : []);
  ws.onclose = (ev) => resolve({code: ev.code, reason: ev.reason});
  setTimeout(() => resolve({code: -1, reason: 'still open'}), 15000);
})"""
TICKET = """async ([name, kind]) => {
  const csrf = document.cookie.split('; ').find((c) => c.startsWith('pyvirt_csrf='))
    .split('=')[1];
  const r = await fetch(`/api/v1/domains/${name}/console-tickets`, {method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
    body: JSON.stringify({kind})});
  return {status: r.status, body: await r.json()};
}"""


def test_console_websockets_refused(web: Any) -> None:
    page = web.page
    webhelp.goto(page, f"{web.base}/ui/console.html")
    wss = web.base.replace("https://", "wss://")
    got = page.evaluate(TICKET, [NAME, "vnc"])
    assert got["status"] == 201, got
    url = wss + got["body"]["url"]
    # a ticket is good for one WebSocket: here it opens the console ...
    opened = page.evaluate("""async (url) => new Promise((resolve) => {
      const ws = new WebSocket(url, ['binary']);
      ws.binaryType = 'arraybuffer';
      ws.onmessage = (ev) => { resolve(new TextDecoder().decode(ev.data).slice(0, 12));
                               ws.close(); };
      ws.onclose = (ev) => resolve('closed: ' + ev.reason);
    })""", url)  # fmt: skip
    assert opened == "RFB 003.008\n"
    # ... and never again
    again = page.evaluate(WS_TRY, [url, "binary"])
    assert again == {"code": 1008, "reason": "console ticket unknown or already used"}
    # nor for another domain's console
    other = page.evaluate(TICKET, [NAME, "serial"])["body"]["url"]
    moved = page.evaluate(WS_TRY, [wss + other.replace(f"/{NAME}/", "/other/"), "binary"])
    assert moved == {"code": 1008, "reason": "console ticket was issued for another console"}
    # a ticket without a session: refused before the upgrade (the browser sees 1006)
    fresh = page.evaluate(TICKET, [NAME, "vnc"])["body"]["url"]
    context = web.new_context()
    try:
        anon = context.new_page()
        webhelp.goto(anon, f"{web.base}/login")
        refused = anon.evaluate(WS_TRY, [wss + fresh, "binary"])
        assert refused["code"] == 1006, refused
    finally:
        context.close()
    web.shot("console-refused")
    # the same from a plain client: HTTP 403 to the upgrade without credentials
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with pytest.raises(InvalidStatus) as info:
        connect(wss + fresh, ssl=ctx, open_timeout=10)
    assert info.value.response.status_code == 403
    # the ticket survived both refusals (they never reached the relay): a session uses it
    ok = page.evaluate(WS_TRY.replace("ws.onclose", "ws.onopen = () => ws.close(); ws.onclose"),
                       [wss + fresh, "binary"])  # fmt: skip
    assert ok["code"] in (1000, 1005), ok


def test_send_ctrl_alt_del_reboots_the_guest(web: Any) -> None:
    """Last (the guest reboots): the toolbar's Ctrl+Alt+Del reaches the guest, whose kernel
    reboots on it (its /init never turns that off): QEMU reports a guest reset."""
    page = web.page
    qemu_log = web.pv.root / "log" / "qemu" / NAME / "qemu.log"
    webhelp.goto(page, f"{web.base}/ui/console.html?domain={NAME}&kind=vnc")
    page.locator("section[data-kind=vnc][data-state=connected]").wait_for(timeout=20_000)
    assert "event RESET" not in qemu_log.read_text()
    page.get_by_role("button", name="Send Ctrl+Alt+Del").click()
    deadline = time.monotonic() + 20
    while '"reason": "guest-reset"' not in qemu_log.read_text():
        assert time.monotonic() < deadline, "the guest did not reset on Ctrl+Alt+Del"
        time.sleep(0.2)
    page.get_by_text("Send key").click()
    assert page.get_by_role("menuitem", name="Ctrl+Alt+F2").is_visible()
    web.shot("vnc-send-key-menu")
