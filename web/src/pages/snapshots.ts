// A VM's Snapshots tab: the snapshot tree, create (with or without memory), revert (Run) and
// delete; over /api/v1/domains/{name}/snapshots (snapshot-list/-create-as/-revert/-delete).
// One action at a time: its progress and outcome show in the "Snapshot progress" status line
// once the list shows its result (tests and screen readers wait on that line).
import { ApiError, enc, get, post, request } from "../api";
import { notify } from "../app";
import { field, h } from "../dom";
import { subscribe } from "../events";
import { followJob, jobText } from "./dialogs";

interface Snapshot {
  name: string;
  creation_time: number;
  state: string;
  parent: string | null;
  location: string;
  current: boolean;
}

export function snapshots(root: HTMLElement, params: string[]): () => void {
  const name = params[0]!;
  const body = h("tbody");
  const msg = h("p", { class: "hint" });
  const progress = h("p", { class: "hint", role: "status", "aria-label": "Snapshot progress" });
  const snapName = h("input", { autocomplete: "off" });
  const desc = h("input", { autocomplete: "off" });
  const memory = h("input", { type: "checkbox", checked: true });
  const create = h("button", { type: "submit" }, "Create Snapshot");
  const form = h("form", { class: "inline", "aria-label": "New snapshot" },
    field("Snapshot name", snapName), field("Description", desc),
    h("label", { class: "check" }, memory, " Include the memory state (running VM)"), create);
  const table = h("table", { class: "grid", role: "treegrid", "aria-label": "Snapshots" },
    h("thead", null, h("tr", null, ...["Name", "Created", "VM state", "Location", ""].map((t) => h("th", null, t)))), body);
  root.append(h("h1", null, name),
    h("nav", { class: "tabs", "aria-label": "VM pages" },
      h("a", { href: `#/vm/${enc(name)}` }, "Details"),
      h("a", { href: `#/vm/${enc(name)}/snapshots`, "aria-current": "page" }, "Snapshots")),
    form, progress, msg, table);

  // one action at a time: the buttons are disabled while one runs
  let busy = false;
  async function action(start: string, work: () => Promise<string>): Promise<void> {
    if (busy) return;
    busy = true;
    root.setAttribute("aria-busy", "true");
    for (const b of root.querySelectorAll<HTMLButtonElement>("form button, tbody button")) b.disabled = true;
    progress.textContent = start;
    try {
      const done = await work();
      await refresh();
      progress.textContent = done;
      notify(done);
    } catch (err) {
      const e = err as ApiError;
      progress.textContent = `Failed: ${e.message}`;
      notify(e.message, "error", e.hint);
      await refresh().catch(() => undefined);
    } finally {
      busy = false;
      root.removeAttribute("aria-busy");
      for (const b of root.querySelectorAll<HTMLButtonElement>("form button, tbody button")) b.disabled = false;
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const wanted = snapName.value.trim();
    void action(`Creating snapshot ${wanted}…`, async () => {
      const st = await get<{ state: string }>(`domains/${enc(name)}/state`);
      const live = st.state === "running" || st.state === "paused";
      const snap = await post<Snapshot>(`domains/${enc(name)}/snapshots/create-as`, {
        name: wanted || null, description: desc.value || null,
        disk_only: live && !memory.checked,
      });
      snapName.value = "";
      desc.value = "";
      return `Snapshot ${snap.name} created`;
    });
  });

  function revert(s: Snapshot): void {
    if (!window.confirm(`Revert ${name} to ${s.name}? Changes since it are lost.`)) return;
    void action(`Reverting to ${s.name}…`, async () => {
      await post(`domains/${enc(name)}/snapshots/${enc(s.name)}/revert`, {});
      return `Reverted to ${s.name}`;
    });
  }

  function remove(s: Snapshot): void {
    if (!window.confirm(`Delete the snapshot ${s.name}?`)) return;
    void action(`Deleting snapshot ${s.name}…`, async () => {
      const resp = await request("DELETE", `domains/${enc(name)}/snapshots/${enc(s.name)}`);
      if (resp.status === 202) {  // a merge of external overlays: a job
        const { job } = (await resp.json()) as { job: Parameters<typeof followJob>[0] };
        await followJob(job, (j) => { progress.textContent = `Deleting snapshot ${s.name}: ${jobText(j)}`; });
      }
      return `Snapshot ${s.name} deleted`;
    });
  }

  // refreshes may overlap (an event during an action): only the latest one's list is shown
  let generation = 0;
  async function refresh(): Promise<void> {
    const mine = ++generation;
    let list: Snapshot[];
    try {
      list = await get<Snapshot[]>(`domains/${enc(name)}/snapshots`);
    } catch (err) {
      if (mine !== generation) return;
      const e = err as ApiError;
      msg.textContent = e.status === 404 || e.status === 405 ? `${e.message}: this pyvirtd may not have the snapshot routes yet` : e.message;
      return;
    }
    if (mine !== generation) return;
    const depth = new Map<string, number>();
    msg.textContent = list.length ? "" : "No snapshots yet.";
    body.replaceChildren(...list.map((s) => {
      const d = s.parent ? (depth.get(s.parent) ?? 0) + 1 : 0;
      depth.set(s.name, d);
      return h("tr", { "aria-level": String(d + 1), dataset: { snapshot: s.name } },
        h("td", { style: `padding-left:${0.6 + d * 1.2}em` }, s.name, s.current ? h("small", null, " (current)") : null),
        h("td", null, new Date(s.creation_time * 1000).toLocaleString()), h("td", null, s.state), h("td", null, s.location),
        h("td", null,
          h("button", { type: "button", "aria-label": `Revert to ${s.name}`, disabled: busy, onclick: () => revert(s) }, "Revert"), " ",
          h("button", { type: "button", "aria-label": `Delete ${s.name}`, disabled: busy, onclick: () => remove(s) }, "Delete")));
    }));
    table.dataset.loaded = "true";
  }
  const unsubscribe = subscribe((ev) => {
    if (ev.object === "domain" && ev.name === name && ev.kind === "lifecycle") void refresh().catch(() => undefined);
  });
  void refresh();
  return unsubscribe;
}
