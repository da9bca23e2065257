// Cluster: this daemon's view of its cluster (issue 16) — the hosts (state, address, memory,
// load, maintenance), the cluster domains (owner, HA, state) and the recent cluster events.
// Live: `cluster` events on the event stream are listed as they come and refresh the tables
// (debounced); job events of HA recoveries too. Shown in the navigation only on a member.
import { ApiError, get } from "../api";
import { notify } from "../app";
import { h } from "../dom";
import { subscribe, type PyvirtEvent } from "../events";
import { kib } from "../format";

interface Host {
  name: string;
  state: string;
  address: string;
  cpus: number;
  memory_kib: number;
  free_kib?: number;
  load?: number;
  up_since?: number;
  maintenance?: boolean;
}
interface ClusterDomain { name: string; owner: string; ha: boolean; state?: string; vcpus: number; memory_kib: number }
interface Status { cluster: { name: string; ttl: number; renew: number }; host: string; leader?: string }

const MAX_EVENTS = 100;
const when = (t: number): string => new Date(t * 1000).toLocaleTimeString();

function stateBadge(state: string, label?: string): HTMLElement {
  const cls = state === "up" || state === "running" ? "running" : state === "down" ? "crashed" : state === "maintenance" ? "paused" : "";
  return h("span", { class: `state ${cls}` }, label ?? state);
}

export function cluster(root: HTMLElement): () => void {
  const summary = h("p", { class: "hint", role: "status" }, "Loading…");
  const hostRows = h("tbody");
  const domRows = h("tbody");
  const evRows = h("tbody");
  const noDomains = h("p", { class: "hint", hidden: true }, "No cluster domains: define one with 'pyvirt cluster define FILE --ha'.");
  const noEvents = h("p", { class: "hint" }, "No cluster events since this daemon started.");
  const head = (...cols: string[]): HTMLElement => h("thead", null, h("tr", null, ...cols.map((t) => h("th", { scope: "col" }, t))));
  root.append(
    h("h1", null, "Cluster"), summary,
    h("h2", { id: "cluster-hosts" }, "Hosts"),
    h("table", { class: "grid", "aria-labelledby": "cluster-hosts" },
      head("Host", "State", "Address", "CPUs", "Memory", "Free", "Load", "Maintenance"), hostRows),
    h("h2", { id: "cluster-domains" }, "Domains"), noDomains,
    h("table", { class: "grid", "aria-labelledby": "cluster-domains" },
      head("Domain", "Owner", "HA", "State", "vCPUs", "Memory"), domRows),
    h("h2", { id: "cluster-events" }, "Recent events"), noEvents,
    h("table", { class: "grid", "aria-labelledby": "cluster-events", "aria-live": "polite" },
      head("Time", "Object", "Name", "Event", "Detail"), evRows));

  let me = "";
  const hostRow = (x: Host): HTMLElement => {
    const maint = x.maintenance === true || x.state === "maintenance";
    return h("tr", { dataset: { host: x.name, state: x.state } },
      h("th", { scope: "row" }, x.name, x.name === me ? h("small", { class: "hint" }, " (this host)") : null),
      h("td", null, stateBadge(x.state)),
      h("td", { class: "path" }, x.address || "—"),
      h("td", null, String(x.cpus)),
      h("td", null, kib(x.memory_kib)),
      h("td", null, x.free_kib !== undefined ? kib(x.free_kib) : "—"),
      h("td", null, x.load !== undefined ? x.load.toFixed(2) : "—"),
      h("td", null, maint ? stateBadge("maintenance", "yes") : "no"));
  };
  const domRow = (d: ClusterDomain): HTMLElement =>
    h("tr", { dataset: { domain: d.name } },
      h("th", { scope: "row" }, d.name),
      h("td", null, d.owner || "—"),
      h("td", null, d.ha ? "yes" : "no"),
      h("td", null, d.state ? stateBadge(d.state) : "—"),
      h("td", null, String(d.vcpus)),
      h("td", null, kib(d.memory_kib)));
  const evRow = (ev: PyvirtEvent): HTMLElement =>
    h("tr", { dataset: { seq: String(ev.seq) } },
      h("td", null, when(ev.time)), h("td", null, ev.object), h("td", null, ev.name),
      h("td", null, ev.event), h("td", null, ev.detail));
  const addEvent = (ev: PyvirtEvent): void => {
    if (evRows.querySelector(`tr[data-seq="${ev.seq}"]`)) return;
    evRows.prepend(evRow(ev));
    while (evRows.children.length > MAX_EVENTS) evRows.lastElementChild?.remove();
    noEvents.hidden = true;
  };

  async function refresh(): Promise<void> {
    const [status, hosts, domains] = await Promise.all([
      get<Status>("cluster/status"), get<Host[]>("cluster/hosts"), get<ClusterDomain[]>("cluster/domains")]);
    me = status.host;
    const up = hosts.filter((x) => x.state !== "down").length;
    summary.textContent = `Cluster ${status.cluster.name}: ${hosts.length} hosts (${up} up), ` +
      `this host ${status.host}, HA leader ${status.leader || "none"}; ` +
      `lease ${status.cluster.ttl} s, renewed every ${status.cluster.renew} s.`;
    hostRows.replaceChildren(...hosts.map(hostRow));
    domRows.replaceChildren(...domains.map(domRow));
    noDomains.hidden = domains.length > 0;
  }

  let timer = 0;
  const later = (): void => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void refresh().catch(() => undefined), 300);
  };
  const unsubscribe = subscribe((ev) => {
    if (ev.kind === "cluster") {
      addEvent(ev);
      later();
    } else if (ev.kind === "job" && String((ev.data.job as { kind?: string } | undefined)?.kind) === "cluster-recover") {
      later();
    }
  });
  void get<PyvirtEvent[]>("cluster/events").then((list) => list.forEach(addEvent)).catch(() => undefined);
  void refresh().catch((e: ApiError) => {
    summary.textContent = "The cluster cannot be read now.";
    notify(e.message, "error", e.hint);
  });
  return () => {
    unsubscribe();
    window.clearTimeout(timer);
  };
}
