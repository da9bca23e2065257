// The daemon's event stream (SSE at /api/v1/events), shared by the pages: one EventSource,
// listeners added and removed as pages come and go.

export interface PyvirtEvent {
  seq: number;
  time: number;
  kind: string;
  object: string;
  name: string;
  event: string;
  detail: string;
  data: Record<string, unknown>;
}

type Listener = (ev: PyvirtEvent) => void;
const listeners = new Set<Listener>();
let source: EventSource | null = null;

function open(): void {
  if (source) return;
  source = new EventSource("/api/v1/events");
  source.onmessage = (msg: MessageEvent<string>) => {
    let ev: PyvirtEvent;
    try {
      ev = JSON.parse(msg.data) as PyvirtEvent;
    } catch {
      return;
    }
    for (const fn of listeners) fn(ev);
  };
  // EventSource reconnects by itself; after a logout the 401 closes it for good
}

/** Call `fn` for every event until the returned function is called. */
export function subscribe(fn: Listener): () => void {
  listeners.add(fn);
  open();
  return () => listeners.delete(fn);
}
