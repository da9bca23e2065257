// The graphical console: noVNC's RFB over the relay's WebSocket (binary frames of RFB).
// Keyboard layouts: QEMU acknowledges the "QEMU extended key event" pseudo-encoding, so
// noVNC sends each key's scancode (KeyboardEvent.code) along with its keysym and the guest's
// own layout applies: no `-k` keymap is needed on the host.
import RFB from "@novnc/novnc";
import { h } from "../dom";
import { closeReason, consoleUrl } from "./tickets";
import type { ConsolePane } from "./pane";

/** X keysyms and KeyboardEvent codes of the keys the "Send key" menu presses. */
const KEY = {
  ctrl: [0xffe3, "ControlLeft"],
  alt: [0xffe9, "AltLeft"],
  backspace: [0xff08, "Backspace"],
  del: [0xffff, "Delete"],
  print: [0xff61, "PrintScreen"],
  tab: [0xff09, "Tab"],
  esc: [0xff1b, "Escape"],
} as const satisfies Record<string, readonly [number, string]>;

type Key = readonly [number, string];

function fkey(n: number): Key {
  return [0xffbe + n - 1, `F${n}`];
}

/** The "Send key" menu: label → keys pressed together (released in reverse order). */
const COMBOS: [string, Key[]][] = [
  ["Ctrl+Alt+Backspace", [KEY.ctrl, KEY.alt, KEY.backspace]],
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((n): [string, Key[]] => [`Ctrl+Alt+F${n}`, [KEY.ctrl, KEY.alt, fkey(n)]]),
  ["Print Screen", [KEY.print]],
  ["Alt+Tab", [KEY.alt, KEY.tab]],
  ["Escape", [KEY.esc]],
];

export function vncPane(pane: ConsolePane): void {
  const screen = h("div", { class: "vnc-screen", "aria-label": `Graphical console of ${pane.domain}` });
  let rfb: RFB | null = null;

  const scale = h("input", { type: "checkbox", checked: true, id: `${pane.id}-scale` });
  scale.addEventListener("change", () => {
    if (rfb) rfb.scaleViewport = scale.checked;
  });
  const press = (keys: Key[]): void => {
    if (!rfb) return;
    for (const [sym, code] of keys) rfb.sendKey(sym, code, true);
    for (const [sym, code] of [...keys].reverse()) rfb.sendKey(sym, code, false);
    rfb.focus();
  };
  const menu = h("details", { class: "keys" },
    h("summary", null, "Send key"),
    h("div", { role: "menu", "aria-label": "Send key" },
      COMBOS.map(([label, keys]) => h("button", {
        type: "button", role: "menuitem",
        onclick: (ev: Event) => {
          press(keys);
          (ev.currentTarget as HTMLElement).closest("details")?.removeAttribute("open");
        },
      }, label))));
  const screenshot = (): void => {
    if (!rfb) return;
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const a = h("a", { href: rfb.toDataURL("image/png"), download: `${pane.domain}-${stamp}.png` });
    document.body.append(a);
    a.click();
    a.remove();
  };
  pane.toolbar.append(
    h("button", { type: "button", onclick: () => rfb?.sendCtrlAltDel() }, "Send Ctrl+Alt+Del"),
    menu,
    h("label", { class: "check" }, scale, " Scale to window"),
    h("button", { type: "button", onclick: () => void pane.body.requestFullscreen?.() }, "Full screen"),
    h("button", { type: "button", onclick: screenshot }, "Screenshot"),
  );
  pane.body.append(screen);

  pane.connect = async () => {
    rfb?.disconnect();
    screen.replaceChildren();
    pane.setStatus("connecting…");
    const ws = new WebSocket(await consoleUrl(pane.domain, "vnc"), ["binary"]);
    ws.binaryType = "arraybuffer";
    ws.addEventListener("close", (ev) => pane.closed(closeReason(ev)));
    rfb = new RFB(screen, ws, { shared: true });
    rfb.scaleViewport = scale.checked;
    rfb.background = "#111";
    rfb.addEventListener("connect", () => {
      pane.setStatus("connected", true);
      rfb?.focus();
    });
    rfb.addEventListener("securityfailure", (ev) => {
      const detail = (ev as CustomEvent<{ reason?: string }>).detail;
      pane.setStatus(`VNC security failure: ${detail.reason ?? "refused"}`);
    });
    pane.canvas = () => screen.querySelector("canvas");
  };
  pane.disconnect = () => {
    rfb?.disconnect();
    rfb = null;
  };
  pane.focus = () => rfb?.focus();
}
