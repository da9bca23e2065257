// A VM's Snapshots tab: the snapshot tree, create (with or without memory), revert (Run) and
// delete; over /api/v1/domains/{name}/snapshots (snapshot-list/-create-as/-revert/-delete).
import { ApiError, enc, get, post, request } from "../api";
import { notify } from "../app";
import { field, h } from "../dom";
import { subscribe } from "../events";
import { followJob } from "./dialogs";

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
  const snapName = h("input", { autocomplete: "off" });
  const desc = h("input", { autocomplete: "off" });
  const memory = h("input", { type: "checkbox", checked: true });
  const form = h("form", { class: "inline", "aria-label": "New snapshot" },
    field("Snapshot name", snapName), field("Description", desc),
    h("label", { class: "check" }, memory, " Include the memory state (running VM)"),
    h("button", { type: "submit" }, "Create Snapshot"));
  root.append(h("h1", null, name),
    h("nav", { class: "tabs", "aria-label": "VM pages" },
      h("a", { href: `#/vm/${enc(name)}` }, "Details"),
      h("a", { href: `#/vm/${enc(name)}/snapshots`, "aria-current": "page" }, "Snapshots")),
    form, msg,
    h("table", { class: "grid", role: "treegrid", "aria-label": "Snapshots" },
      h("thead", null, h("tr", null, ...["Name", "Created", "VM state", "Location", ""].map((t) => h("th", null, t)))), body));

  const report = (err: unknown): void => {
    const e = err as ApiError;
    notify(e.message, "error", e.hint);
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void (async () => {
      const st = await get<{ state: string }>(`domains/${enc(name)}/state`);
      const live = st.state === "running" || st.state === "paused";
      await post(`domains/${enc(name)}/snapshots/create-as`, {
        name: snapName.value.trim() || null, description: desc.value || null,
        disk_only: live && !memory.checked,
      });
      notify(`Snapshot ${snapName.value.trim() || ""} created`);
      snapName.value = "";
      desc.value = "";
      await refresh();
    })().catch(report);
  });

  async function remove(s: Snapshot): Promise<void> {
    if (!window.confirm(`Delete the snapshot ${s.name}?`)) return;
    const resp = await request("DELETE", `domains/${enc(name)}/snapshots/${enc(s.name)}`);
    if (resp.status === 202) {
      const { job } = (await resp.json()) as { job: Parameters<typeof followJob>[0] };
      await followJob(job, () => undefined);
    }
    notify(`Snapshot ${s.name} deleted`);
  }

  async function refresh(): Promise<void> {
    let list: Snapshot[];
    try {
      list = await get<Snapshot[]>(`domains/${enc(name)}/snapshots`);
    } catch (err) {
      const e = err as ApiError;
      msg.textContent = e.status === 404 || e.status === 405 ? `${e.message}: this pyvirtd may not have the snapshot routes yet` : e.message;
      return;
    }
    const depth = new Map<string, number>();
    msg.textContent = list.length ? "" : "No snapshots yet.";
    body.replaceChildren(...list.map((s) => {
      const d = s.parent ? (depth.get(s.parent) ?? 0) + 1 : 0;
      depth.set(s.name, d);
      return h("tr", { "aria-level": String(d + 1), dataset: { snapshot: s.name } },
        h("td", { style: `padding-left:${0.6 + d * 1.2}em` }, s.name, s.current ? h("small", null, " (current)") : null),
        h("td", null, new Date(s.creation_time * 1000).toLocaleString()), h("td", null, s.state), h("td", null, s.location),
        h("td", null,
          h("button", { type: "button", "aria-label": `Revert to ${s.name}`, onclick: () => {
            if (!window.confirm(`Revert ${name} to ${s.name}? Changes since it are lost.`)) return;
            void post(`domains/${enc(name)}/snapshots/${enc(s.name)}/revert`, {}).then(() => { notify(`Reverted to ${s.name}`); return refresh(); }).catch(report);
          } }, "Revert"), " ",
          h("button", { type: "button", "aria-label": `Delete ${s.name}`, onclick: () => void remove(s).then(() => refresh()).catch(report) }, "Delete")));
    }));
  }
  const unsubscribe = subscribe((ev) => {
    if (ev.object === "domain" && ev.name === name && ev.kind === "lifecycle") void refresh().catch(() => undefined);
  });
  void refresh();
  return unsubscribe;
}
