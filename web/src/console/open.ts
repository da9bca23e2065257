// Opening a console from any page: a console window already open takes the new console as
// a tab (BroadcastChannel); otherwise a new window shows console.html for it.
import type { Kind } from "./tickets";

export const CHANNEL = "pyvirt-consoles";

/** A page asks (`open` + `id`); a console window answers `taken: id`. */
export interface OpenMessage {
  open?: { domain: string; kind: Kind };
  id?: string;
  taken?: string;
}

/** The console page's URL for `kind` of `domain`. */
export function consoleHref(domain: string, kind: Kind): string {
  return `/ui/console.html?domain=${encodeURIComponent(domain)}&kind=${kind}`;
}

/** Show `kind` of `domain` in the consoles window (opened if there is none). */
export function openConsole(domain: string, kind: Kind = "vnc"): void {
  if (typeof BroadcastChannel === "undefined") {
    window.open(consoleHref(domain, kind), "pyvirt-consoles");
    return;
  }
  const channel = new BroadcastChannel(CHANNEL);
  const id = `${domain}/${kind}/${Math.random()}`;
  let taken = false;
  channel.onmessage = (ev: MessageEvent<OpenMessage>) => {
    if (ev.data.taken === id) taken = true;
  };
  channel.postMessage({ open: { domain, kind }, id } satisfies OpenMessage);
  setTimeout(() => {
    channel.close();
    if (!taken) window.open(consoleHref(domain, kind), "pyvirt-consoles");
  }, 200);
}
