// The Tasks panel: every daemon job (clones, copies, wipes, uploads) with its progress, a
// Cancel button while it runs, and the error with its hint when it failed. Live: job events.
import { ApiError, del, enc, get } from "../api";
import { notify } from "../app";
import { h } from "../dom";
import { subscribe } from "../events";
import { bytes } from "../format";

interface Job {
  id: string;
  kind: string;
  object: string;
  state: string;
  owner: string;
  started: number;
  finished: number | null;
  progress: { done: number; total: number; unit: string; rate: number };
  error: { error: string; hint: string | null; code?: string } | null;
}

const when = (t: number | null): string => (t ? new Date(t * 1000).toLocaleTimeString() : "");

export function tasks(root: HTMLElement): () => void {
  const body = h("tbody");
  const empty = h("p", { class: "hint", hidden: true }, "No tasks yet: clones, volume copies, wipes and uploads show here.");
  root.append(h("h1", null, "Tasks"), empty,
    h("table", { class: "grid", "aria-label": "Tasks" },
      h("thead", null, h("tr", null, ...["Task", "Object", "State", "Progress", "Started", "Finished", "By", ""].map((t) => h("th", null, t)))),
      body));

  const row = (j: Job): HTMLElement => {
    const p = j.progress;
    const frac = p.total ? p.done / p.total : j.state === "completed" ? 1 : 0;
    const prog = h("progress", { max: 1, value: frac, "aria-label": `Progress of ${j.kind} ${j.object}` });
    const detail = p.unit === "bytes" && p.total ? `${bytes(p.done)} of ${bytes(p.total)}${p.rate ? `, ${bytes(p.rate)}/s` : ""}` : `${Math.round(frac * 100)} %`;
    return h("tr", { dataset: { job: j.id } },
      h("td", null, `${j.kind} #${j.id}`), h("td", null, j.object),
      h("td", null, h("span", { class: `state job-${j.state}` }, j.state),
        j.error ? h("div", { class: "joberr", role: "note" }, j.error.error, j.error.hint ? h("small", null, ` (${j.error.hint})`) : null) : null),
      h("td", null, prog, " ", h("small", null, detail)),
      h("td", null, when(j.started)), h("td", null, when(j.finished)), h("td", null, j.owner),
      h("td", null, j.state === "running"
        ? h("button", { type: "button", onclick: () => void cancel(j) }, "Cancel") : null));
  };

  async function cancel(j: Job): Promise<void> {
    try {
      await del(`jobs/${enc(j.id)}`);
      notify(`Cancelled ${j.kind} #${j.id}`);
    } catch (err) {
      const e = err as ApiError;
      notify(e.message, "error", e.hint);
    }
    await refresh();
  }

  async function refresh(): Promise<void> {
    const jobs = await get<Job[]>("jobs?all=true");
    jobs.sort((a, b) => b.started - a.started);
    body.replaceChildren(...jobs.map(row));
    empty.hidden = jobs.length > 0;
  }

  let timer = 0;
  const unsubscribe = subscribe((ev) => {
    if (ev.kind !== "job") return;
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void refresh(), 200);
  });
  void refresh().catch((e: ApiError) => notify(e.message, "error", e.hint));
  return () => {
    unsubscribe();
    window.clearTimeout(timer);
  };
}
