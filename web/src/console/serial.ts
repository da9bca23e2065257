// The serial console: xterm.js over the relay's WebSocket (the serial line's bytes, both ways).
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { h } from "../dom";
import { closeReason, consoleUrl } from "./tickets";
import type { ConsolePane } from "./pane";

export function serialPane(pane: ConsolePane): void {
  const holder = h("div", { class: "serial-screen" });
  const term = new Terminal({
    cursorBlink: true, convertEol: false, scrollback: 5000, fontSize: 14,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace",
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  pane.body.append(holder);
  term.open(holder);
  const refit = (): void => {
    if (!pane.panel.hidden) fit.fit();
  };
  new ResizeObserver(refit).observe(holder);

  let ws: WebSocket | null = null;
  const encoder = new TextEncoder();
  term.onData((data) => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
  });
  term.onBinary((data) => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(Uint8Array.from(data, (c) => c.charCodeAt(0)));
  });
  pane.toolbar.append(
    h("button", { type: "button", onclick: () => term.clear() }, "Clear"),
    h("button", { type: "button", onclick: () => {
      ws?.send(encoder.encode("\r"));
      term.focus();
    } }, "Send Enter"),
  );

  pane.connect = async () => {
    ws?.close();
    pane.setStatus("connecting…");
    const sock = new WebSocket(await consoleUrl(pane.domain, "serial"), ["binary"]);
    sock.binaryType = "arraybuffer";
    sock.onopen = () => {
      pane.setStatus("connected", true);
      refit();
      term.focus();
    };
    sock.onmessage = (ev: MessageEvent<ArrayBuffer | string>) => {
      term.write(typeof ev.data === "string" ? ev.data : new Uint8Array(ev.data));
    };
    sock.onclose = (ev) => {
      if (ws === sock) pane.closed(closeReason(ev));
    };
    ws = sock;
  };
  pane.disconnect = () => {
    const sock = ws;
    ws = null;
    sock?.close();
    term.dispose();
  };
  pane.focus = () => {
    refit();
    term.focus();
  };
}
