// The consoles page (/ui/console.html?domain=NAME&kind=vnc|serial): each console a tab,
// graphical ones with noVNC, serial ones with xterm.js, all through pyvirtd's relay with a
// single-use ticket each. Other pages add tabs here with openConsole() (console/open.ts).
import "@xterm/xterm/css/xterm.css";
import "./console/console.css";
import { h } from "./dom";
import { CHANNEL, type OpenMessage } from "./console/open";
import { ConsolePane } from "./console/pane";
import { serialPane } from "./console/serial";
import type { Kind } from "./console/tickets";
import { vncPane } from "./console/vnc";

const panes: ConsolePane[] = [];
let tabs: HTMLElement;
let deck: HTMLElement;
let empty: HTMLElement;

function select(pane: ConsolePane): void {
  for (const p of panes) p.select(p === pane);
  document.title = `${pane.domain} - consoles - pyvirt`;
}

function remove(pane: ConsolePane): void {
  const at = panes.indexOf(pane);
  if (at < 0) return;
  pane.disconnect();
  panes.splice(at, 1);
  pane.tab.parentElement?.remove();
  pane.panel.remove();
  const next = panes[Math.min(at, panes.length - 1)];
  if (next) select(next);
  empty.hidden = panes.length > 0;
  syncUrl();
}

/** Keep the address bar listing the open consoles (a reload reopens them). */
function syncUrl(): void {
  const q = new URLSearchParams();
  for (const p of panes) q.append("open", `${p.kind}:${p.domain}`);
  history.replaceState(null, "", `${location.pathname}?${q.toString()}`);
}

/** Open (or show again) ``kind`` of ``domain`` as a tab. */
export function open(domain: string, kind: Kind): ConsolePane {
  const have = panes.find((p) => p.domain === domain && p.kind === kind);
  if (have) {
    select(have);
    return have;
  }
  const pane = new ConsolePane(domain, kind, remove);
  pane.tab.addEventListener("click", () => select(pane));
  tabs.append(h("span", { class: "tab-item" }, pane.tab, pane.close));
  deck.append(pane.panel);
  (kind === "vnc" ? vncPane : serialPane)(pane);
  panes.push(pane);
  empty.hidden = true;
  select(pane);
  syncUrl();
  void pane.start();
  return pane;
}

function keyboardTabs(ev: KeyboardEvent): void {
  const at = panes.findIndex((p) => p.tab === document.activeElement);
  if (at < 0 || (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft")) return;
  const next = panes[(at + (ev.key === "ArrowRight" ? 1 : panes.length - 1)) % panes.length];
  select(next);
  next.tab.focus();
  ev.preventDefault();
}

function openForm(): HTMLFormElement {
  const name = h("input", { id: "open-domain", required: true, autocomplete: "off", size: 16 });
  const kind = h("select", { id: "open-kind" },
    h("option", { value: "vnc" }, "Graphical (VNC)"), h("option", { value: "serial" }, "Serial"));
  const form = h("form", { class: "open", "aria-label": "Open a console" },
    h("label", { htmlFor: name.id }, "Domain"), name,
    h("label", { htmlFor: kind.id }, "Console"), kind,
    h("button", { type: "submit" }, "Open"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (name.value.trim()) open(name.value.trim(), kind.value as Kind);
  });
  return form;
}

function start(): void {
  tabs = h("div", { role: "tablist", "aria-label": "Consoles", class: "console-tabs" });
  tabs.addEventListener("keydown", keyboardTabs);
  deck = h("main", { class: "deck" });
  empty = h("p", { class: "empty" }, "No console open: name a running domain above.");
  deck.append(empty);
  document.getElementById("app")!.replaceChildren(
    h("header", { class: "console-head" }, h("a", { class: "brand", href: "/" }, "pyvirt"), tabs, openForm()),
    deck);
  const q = new URLSearchParams(location.search);
  const wanted: [string, Kind][] = [];
  const domain = q.get("domain");
  if (domain) wanted.push([domain, q.get("kind") === "serial" ? "serial" : "vnc"]);
  for (const item of q.getAll("open")) {
    const [kind, ...rest] = item.split(":");
    if (rest.length) wanted.push([rest.join(":"), kind === "serial" ? "serial" : "vnc"]);
  }
  for (const [d, k] of wanted) open(d, k);
  if (panes[0]) select(panes[0]);
  if (typeof BroadcastChannel !== "undefined") {
    const channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = (ev: MessageEvent<OpenMessage>) => {
      const req = ev.data.open;
      if (!req) return;
      channel.postMessage({ taken: ev.data.id } satisfies OpenMessage);
      open(req.domain, req.kind);
      window.focus();
    };
  }
  window.addEventListener("beforeunload", () => panes.forEach((p) => p.disconnect()));
}

/** What the browser tests look at. */
declare global {
  interface Window {
    pyvirtConsoles?: { open: typeof open; panes: ConsolePane[] };
  }
}
window.pyvirtConsoles = { open, panes };

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
