// One console tab: its tab button, its panel (toolbar, status, screen), and the hooks the
// VNC and serial kinds fill in (connect, disconnect, focus).
import { h } from "../dom";
import type { Kind } from "./tickets";

let seq = 0;

export class ConsolePane {
  readonly id: string;
  readonly tab: HTMLButtonElement;
  readonly close: HTMLButtonElement;
  readonly panel: HTMLElement;
  readonly toolbar: HTMLElement;
  readonly body: HTMLElement;
  private readonly status: HTMLElement;
  private readonly reconnect: HTMLButtonElement;
  connect: () => Promise<void> = async () => undefined;
  disconnect: () => void = () => undefined;
  focus: () => void = () => undefined;
  /** the VNC canvas (tests and screenshots) */
  canvas: () => HTMLCanvasElement | null = () => null;

  constructor(readonly domain: string, readonly kind: Kind, onClose: (p: ConsolePane) => void) {
    seq += 1;
    this.id = `console-${seq}`;
    const label = `${domain} (${kind === "vnc" ? "graphical" : "serial"})`;
    this.tab = h("button", {
      type: "button", role: "tab", id: `${this.id}-tab`, "aria-controls": this.id,
      "aria-selected": "false", class: "tab",
    }, label);
    this.close = h("button", {
      type: "button", class: "tab-close", "aria-label": `Close ${label}`,
      onclick: () => onClose(this),
    }, "×");
    this.status = h("span", { class: "status", role: "status", "aria-live": "polite" });
    this.reconnect = h("button", { type: "button", hidden: true, onclick: () => void this.start() },
      "Reconnect");
    this.toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": `${label} tools` });
    this.body = h("div", { class: `console-body ${kind}` });
    this.panel = h("section", {
      role: "tabpanel", id: this.id, "aria-labelledby": `${this.id}-tab`, hidden: true,
      class: "console-pane", dataset: { domain, kind },
    }, h("div", { class: "console-bar" }, this.toolbar, this.reconnect, this.status), this.body);
  }

  /** Get a ticket and connect; errors show in the status line. */
  async start(): Promise<void> {
    this.reconnect.hidden = true;
    this.panel.dataset.state = "connecting";
    try {
      await this.connect();
    } catch (err) {
      this.closed(err instanceof Error ? err.message : String(err));
    }
  }

  setStatus(text: string, connected = false): void {
    this.status.textContent = text;
    this.status.classList.toggle("ok", connected);
    if (connected) this.panel.dataset.state = "connected";
  }

  /** The console's connection ended (``reason`` from the relay's close frame). */
  closed(reason: string): void {
    this.panel.dataset.state = "closed";
    this.setStatus(`Disconnected: ${reason}`);
    this.reconnect.hidden = false;
  }

  select(selected: boolean): void {
    this.tab.setAttribute("aria-selected", String(selected));
    this.tab.tabIndex = selected ? 0 : -1;
    this.panel.hidden = !selected;
    if (selected) this.focus();
  }
}
