// Console tickets: a single-use, 30-second ticket from the REST API, then the WebSocket URL
// it opens on this origin (the relay inside pyvirtd; never a port of QEMU).
import { enc, post } from "../api";

export type Kind = "vnc" | "serial";

interface Ticket {
  ticket: string;
  expires: string;
  url: string;
}

/** A fresh ticket for `kind` of `domain`, as the ws(s):// URL of the relay. */
export async function consoleUrl(domain: string, kind: Kind): Promise<string> {
  const t = await post<Ticket>(`domains/${enc(domain)}/console-tickets`, { kind });
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}${t.url}`;
}

/** Why a relay WebSocket closed, in words. */
export function closeReason(ev: CloseEvent): string {
  if (ev.reason) return ev.reason;
  if (ev.code === 1000) return "closed";
  if (ev.code === 1006) return "connection lost or refused (are you still logged in?)";
  return `closed (code ${ev.code})`;
}
