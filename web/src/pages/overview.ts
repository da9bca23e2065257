// The overview: host usage, and the VM table (virtualised: only the visible rows exist in the
// DOM, so 1000 domains render as fast as 30), with filter, sort, multi-select actions and
// live updates from the event stream. Events are handled in batches (one state request per
// changed domain, one repaint per batch), and a repaint rebuilds only the rows whose figures
// changed. CPU sparklines come from the daemon's statistics history: one request for all the
// visible running rows, the last minutes at once, then the new samples.
import { ApiError, enc, get, post } from "../api";
import { notify } from "../app";
import { clear, field, h } from "../dom";
import { subscribe } from "../events";
import { bytes, kib, meterText, pct, sparkline } from "../format";

interface DomainStatus {
  name: string;
  uuid: string;
  id: number | null;
  state: string;
  reason: string;
  persistent: boolean;
  autostart: boolean;
}

interface Stats {
  name: string;
  state: string;
  memory?: { current_kib: number; maximum_kib: number };
  vcpu?: { current: number; maximum: number };
}

interface Detail {
  vcpus?: number;
  memKib?: number;
  /** CPU % samples from the daemon's history (oldest first) and the time of the last one */
  cpu: number[];
  cpuT?: number;
  ips?: string[];
  ipsAt?: number;
  fetchedAt?: number;
}

const ROW = 34; // px: fixed row height (app.css .vmtable tr)
const OVERSCAN = 8;
/** samples in a sparkline: 5 minutes at the daemon's 5 s interval */
const SPARK_POINTS = 60;
const SORTS = ["name", "state", "vcpus", "memory"] as const;
type SortKey = (typeof SORTS)[number];

const STATE_ORDER: Record<string, number> = { running: 0, paused: 1, "in shutdown": 2, "shut off": 3, crashed: 4 };

/** Run `fn` over `items`, at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function hostPanel(): { el: HTMLElement; refresh: () => Promise<void> } {
  const cpu = h("dd", { id: "host-cpu" }, "…");
  const mem = h("dd", { id: "host-memory" }, "…");
  const disk = h("dd", { id: "host-disk" }, "…");
  const el = h("section", { class: "host", "aria-label": "Host" },
    h("dl", null, h("dt", null, "CPU"), cpu, h("dt", null, "Memory"), mem, h("dt", null, "Disk"), disk));
  let last: { busy: number; total: number } | null = null;
  const refresh = async (): Promise<void> => {
    const [host, pools] = await Promise.all([
      get<{ cpu_ns: Record<string, number>; memory_bytes: Record<string, number> }>("/api/v1/stats/host"),
      get<{ state: string; capacity: number; allocation: number; target: string | null }[]>("/api/v1/pools"),
    ]);
    const total = Object.values(host.cpu_ns).reduce((a, b) => a + b, 0);
    const busy = total - (host.cpu_ns.idle ?? 0) - (host.cpu_ns.iowait ?? 0);
    if (last && total > last.total) cpu.textContent = pct(((busy - last.busy) / (total - last.total)) * 100);
    else if (!last) cpu.textContent = pct((busy / total) * 100);
    last = { busy, total };
    const m = host.memory_bytes;
    const memTotal = m.total ?? 0;
    mem.textContent = meterText(memTotal - (m.available ?? 0), memTotal, bytes);
    const seen = new Set<string>();
    let cap = 0;
    let alloc = 0;
    for (const p of pools) {
      if (p.state !== "running" || (p.target && seen.has(p.target))) continue;
      if (p.target) seen.add(p.target);
      cap += p.capacity;
      alloc += p.allocation;
    }
    disk.textContent = cap ? `${meterText(alloc, cap, bytes)} in storage pools` : "no active storage pool";
  };
  return { el, refresh };
}

export function overview(root: HTMLElement): () => void {
  const t0 = performance.now();
  let domains: DomainStatus[] = [];
  const details = new Map<string, Detail>();
  const selected = new Set<string>();
  let view: DomainStatus[] = [];
  let sortKey: SortKey = "name";
  let sortDir = 1;
  let disposed = false;

  const host = hostPanel();
  const filter = h("input", { type: "search", placeholder: "name", autocomplete: "off" });
  const stateSel = h("select", null, ...["all", "running", "paused", "shut off", "other"].map((s) =>
    h("option", { value: s }, s === "all" ? "All" : s)));
  const count = h("span", { class: "count", role: "status" });
  const selectAll = h("input", { type: "checkbox", "aria-label": "Select all" });
  const act = (label: string, fn: (name: string) => Promise<unknown>, cls = ""): HTMLButtonElement =>
    h("button", { type: "button", class: cls, onclick: () => void runOn(label, fn) }, label);
  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": "Selected VMs" },
    act("Run", (n) => post(`domains/${enc(n)}/start`, {}), "primary"),
    act("Shut Down", (n) => post(`domains/${enc(n)}/shutdown`, {})),
    act("Force Off", (n) => post(`domains/${enc(n)}/destroy`, {})),
    h("a", { class: "button", href: "#/new" }, "New VM"));
  const head = h("thead", null, h("tr", null,
    h("th", { class: "sel" }, selectAll),
    ...SORTS.map((key) => h("th", { "aria-sort": "none", dataset: { key } },
      h("button", { type: "button", class: "sort", onclick: () => setSort(key) },
        { name: "Name", state: "State", vcpus: "vCPUs", memory: "Memory" }[key]))),
    h("th", null, "CPU"), h("th", null, "IP addresses"), h("th", null, h("span", { class: "sr" }, "Actions"))));
  const body = h("tbody");
  const scroller = h("div", { class: "scroller", tabIndex: 0 },
    h("table", { class: "vmtable", "aria-label": "Virtual machines" }, head, body));

  root.append(h("h1", null, "Overview"), host.el,
    h("div", { class: "filters" }, field("Filter by name", filter), field("State", stateSel), count),
    toolbar, scroller);

  function setSort(key: SortKey): void {
    sortDir = key === sortKey ? -sortDir : 1;
    sortKey = key;
    for (const th of head.querySelectorAll<HTMLElement>("th[data-key]")) {
      th.setAttribute("aria-sort", th.dataset.key === key ? (sortDir > 0 ? "ascending" : "descending") : "none");
    }
    recompute();
  }

  function recompute(): void {
    const q = filter.value.trim().toLowerCase();
    const st = stateSel.value;
    view = domains.filter((d) =>
      (!q || d.name.toLowerCase().includes(q)) &&
      (st === "all" || (st === "other" ? !["running", "paused", "shut off"].includes(d.state) : d.state === st)));
    if (sortKey !== "name") {
      const keys = new Map<string, number>();
      for (const d of view) {
        const det = details.get(d.name);
        keys.set(d.name, sortKey === "state" ? (STATE_ORDER[d.state] ?? 9)
          : sortKey === "vcpus" ? (det?.vcpus ?? -1) : (det?.memKib ?? -1));
      }
      view.sort((a, b) => {
        const x = keys.get(a.name)!;
        const y = keys.get(b.name)!;
        return (x !== y ? x - y : a.name < b.name ? -1 : a.name > b.name ? 1 : 0) * sortDir;
      });
    } else {
      view.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) * sortDir);
    }
    count.textContent = `${view.length} of ${domains.length} VMs`;
    selectAll.checked = view.length > 0 && view.every((d) => selected.has(d.name));
    paint();
  }

  /** What a row shows: a row is rebuilt only when this changes. */
  function signature(d: DomainStatus): string {
    const det = details.get(d.name);
    return [d.state, selected.has(d.name), det?.vcpus, det?.memKib, det?.cpuT, det?.cpu.length, det?.ips?.join()].join("|");
  }

  function row(d: DomainStatus): HTMLTableRowElement {
    const det = details.get(d.name);
    const check = h("input", { type: "checkbox", "aria-label": `Select ${d.name}`, checked: selected.has(d.name),
      onchange: () => { if (check.checked) selected.add(d.name); else selected.delete(d.name); } });
    const running = d.state === "running" || d.state === "paused";
    const cpuNow = det?.cpu.length ? det.cpu[det.cpu.length - 1]! : null;
    return h("tr", { dataset: { name: d.name } },
      h("td", { class: "sel" }, check),
      h("td", { class: "name" }, h("a", { href: `#/vm/${enc(d.name)}` }, d.name)),
      h("td", null, h("span", { class: `state ${d.state.replace(/\s+/g, "-")}` }, d.state)),
      h("td", { class: "num" }, det?.vcpus ?? ""),
      h("td", { class: "num" }, kib(det?.memKib)),
      h("td", { class: "cpu" }, running && det ? sparkline(det.cpu, `CPU ${cpuNow === null ? "" : pct(cpuNow)}`) : null,
        running && cpuNow !== null ? h("small", null, pct(cpuNow)) : null),
      h("td", { class: "ips" }, (det?.ips ?? []).join(", ")),
      h("td", { class: "acts" }, running
        ? h("a", { href: `/ui/console.html?domain=${enc(d.name)}&kind=vnc`, target: "_blank", rel: "noopener" }, "Console")
        : null));
  }

  let first = -1;
  let last = -1;
  // the rows in the document by name, with the signature they were built with
  let built = new Map<string, { tr: HTMLTableRowElement; sig: string }>();
  const spacerCell = (): HTMLTableCellElement => h("td", { colSpan: 8 });
  const topCell = spacerCell();
  const bottomCell = spacerCell();
  const topSpacer = h("tr", { class: "spacer", "aria-hidden": "true" }, topCell);
  const bottomSpacer = h("tr", { class: "spacer", "aria-hidden": "true" }, bottomCell);
  /** Show the rows in view; `fetch`: then load the details of rows that came into view
   * (not after a load of details: that would poll in a loop). */
  function paint(force = true, fetch = true): void {
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    const from = Math.max(0, Math.min(Math.floor(top / ROW), view.length - Math.ceil(height / ROW)) - OVERSCAN);
    const to = Math.min(view.length, Math.ceil((top + height) / ROW) + OVERSCAN);
    if (!force && from === first && to === last) return;
    first = from;
    last = to;
    topCell.style.height = `${from * ROW}px`;
    bottomCell.style.height = `${(view.length - to) * ROW}px`;
    const next = new Map<string, { tr: HTMLTableRowElement; sig: string }>();
    const rows: HTMLElement[] = [topSpacer];
    for (let i = from; i < to; i++) {
      const d = view[i]!;
      const sig = signature(d);
      const old = built.get(d.name);
      const entry = old && old.sig === sig ? old : { tr: row(d), sig };
      next.set(d.name, entry);
      rows.push(entry.tr);
    }
    rows.push(bottomSpacer);
    built = next;
    // touch the document only where it differs: same rows in the same order → nothing
    const have = body.children;
    let same = have.length === rows.length;
    for (let i = 0; same && i < rows.length; i++) same = have[i] === rows[i];
    if (!same) body.replaceChildren(...rows);
    if (fetch) scheduleDetails();
  }

  // details (vCPUs, memory, CPU history, IPs) of the visible rows only
  let detailTimer = 0;
  function scheduleDetails(delay = 150): void {
    window.clearTimeout(detailTimer);
    detailTimer = window.setTimeout(() => void loadDetails(), delay);
  }

  /** One request for the CPU history of every visible running row: the last
   * SPARK_POINTS samples of rows seen for the first time, the newer ones of the others. */
  async function loadCpuHistory(names: string[]): Promise<void> {
    if (!names.length) return;
    const since = Math.min(...names.map((n) => details.get(n)?.cpuT ?? 0));
    const qs = `domains=${names.map(enc).join(",")}&since=${since}&points=${SPARK_POINTS}`;
    const hist = await get<Record<string, { t: number[]; cpu: (number | null)[] }>>(`/api/v1/stats/history/cpu?${qs}`);
    for (const [name, cols] of Object.entries(hist)) {
      const det = details.get(name) ?? { cpu: [] };
      details.set(name, det);
      cols.t.forEach((t, i) => {
        if (det.cpuT !== undefined && t <= det.cpuT) return;
        det.cpuT = t;
        const v = cols.cpu[i];
        if (v !== null && v !== undefined) det.cpu.push(Math.max(0, Math.min(100, v)));
      });
      if (det.cpu.length > SPARK_POINTS) det.cpu.splice(0, det.cpu.length - SPARK_POINTS);
    }
  }

  // one load at a time; a call meanwhile (rows came into view) runs once it is done
  let loading = false;
  let again = false;
  async function loadDetails(): Promise<void> {
    if (disposed) return;
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      await loadVisible();
    } finally {
      loading = false;
    }
    if (disposed) return;
    paint(true, false);
    if (again) {
      again = false;
      scheduleDetails(0);
    }
  }

  async function loadVisible(): Promise<void> {
    const now = Date.now();
    const visible = view.slice(first, last);
    const want = visible.filter((d) => {
      const det = details.get(d.name);
      return !det?.fetchedAt || d.state === "running" || now - det.fetchedAt > 60_000;
    }).map((d) => d.name);
    if (want.length) {
      const qs = want.map((n) => `name=${enc(n)}`).join("&");
      try {
        const stats = await get<Stats[]>(`/api/v1/stats/domains?${qs}&group=state&group=vcpu&group=balloon`);
        for (const s of stats) {
          const det = details.get(s.name) ?? { cpu: [] };
          det.vcpus = s.vcpu?.current ?? det.vcpus;
          det.memKib = s.memory?.current_kib ?? det.memKib;
          det.fetchedAt = now;
          if (s.state !== "running" && s.state !== "paused") {
            det.cpu = [];
            det.cpuT = undefined;
          }
          details.set(s.name, det);
        }
      } catch (err) {
        if (!(err instanceof ApiError && err.code === "not_found")) throw err;
      }
    }
    const running = visible.filter((d) => d.state === "running" || d.state === "paused");
    await loadCpuHistory(running.map((d) => d.name)).catch(() => undefined);
    const needIps = running.filter((d) => now - (details.get(d.name)?.ipsAt ?? 0) > 30_000);
    await pool(needIps, 4, async (d) => {
      const det = details.get(d.name) ?? { cpu: [] };
      det.ipsAt = now;
      details.set(d.name, det);
      try {
        const addrs = await get<{ address: string }[]>(`domains/${enc(d.name)}/interfaces/addresses`);
        det.ips = addrs.map((a) => a.address.replace(/\/\d+$/, ""));
      } catch {
        det.ips = [];
      }
    });
  }

  async function runOn(label: string, fn: (name: string) => Promise<unknown>): Promise<void> {
    const names = [...selected];
    if (!names.length) {
      notify(`${label}: select one or more VMs first`, "error");
      return;
    }
    let failed = 0;
    await pool(names, 4, async (name) => {
      try {
        await fn(name);
      } catch (err) {
        failed += 1;
        const e = err as ApiError;
        notify(`${label} ${name}: ${e.message}`, "error", e.hint);
      }
    });
    if (!failed) notify(`${label}: ${names.length} VM${names.length > 1 ? "s" : ""}`);
  }

  // live updates: events are collected and handled together at most every 100 ms (a burst
  // of events from 10 starting guests is a few state requests and one repaint)
  const pending = new Set<string>();
  let pendingTimer = 0;
  let flushing = false;
  let relist = false;
  function refreshSoon(name: string | null): void {
    if (name === null) relist = true;
    else pending.add(name);
    if (!pendingTimer && !flushing) pendingTimer = window.setTimeout(() => void flush(), 100);
  }
  async function flush(): Promise<void> {
    pendingTimer = 0;
    flushing = true;
    try {
      if (relist) {
        relist = false;
        pending.clear();
        domains = await get<DomainStatus[]>("domains?all=true&uuids=false");
        recompute();
        return;
      }
      const names = [...pending];
      pending.clear();
      let changed = false;
      await pool(names, 4, async (name) => {
        try {
          const st = await get<DomainStatus>(`domains/${enc(name)}/state`);
          const i = domains.findIndex((d) => d.name === name);
          const old = domains[i];
          if (old && (old.state !== st.state || old.reason !== st.reason || old.id !== st.id)) {
            domains[i] = { ...old, state: st.state, reason: st.reason, id: st.id };
            changed = true;
          }
          const det = details.get(name);
          if (det) det.fetchedAt = 0;
        } catch (err) {
          if (err instanceof ApiError && err.code === "not_found") {
            domains = domains.filter((d) => d.name !== name);
            changed = true;
          }
        }
      });
      // the order or the filter's result only change with a state; else the rows follow
      // with their details
      if (changed) recompute();
      else scheduleDetails();
    } finally {
      flushing = false;
      if ((pending.size || relist) && !pendingTimer) pendingTimer = window.setTimeout(() => void flush(), 100);
    }
  }
  const unsubscribe = subscribe((ev) => {
    if (ev.object !== "domain") return;
    const known = domains.some((d) => d.name === ev.name);
    if (ev.kind === "lifecycle" && (!known || ev.event === "Undefined" || ev.event === "Renamed")) refreshSoon(null);
    else if (known) refreshSoon(ev.name);
  });

  const refilter = (): void => {
    scroller.scrollTop = 0;
    recompute();
  };
  filter.addEventListener("input", refilter);
  stateSel.addEventListener("change", refilter);
  selectAll.addEventListener("change", () => {
    for (const d of view) {
      if (selectAll.checked) selected.add(d.name);
      else selected.delete(d.name);
    }
    paint();
  });
  let raf = 0;
  scroller.addEventListener("scroll", () => {
    if (raf) return;
    raf = requestAnimationFrame(() => {
      raf = 0;
      paint(false);
    });
  });

  const poll = window.setInterval(() => {
    void host.refresh().catch(() => undefined);
    void loadDetails().catch(() => undefined);
  }, 3000);

  void get<DomainStatus[]>("domains?all=true&uuids=false").then((list) => {
    domains = list;
    recompute();
    // after the next frame is painted: since the page started loading (navigation), and
    // since this page was opened
    requestAnimationFrame(() => setTimeout(() => {
      const timing = { sinceNavigation: performance.now(), sincePage: performance.now() - t0, rows: domains.length };
      root.dataset.renderMs = timing.sincePage.toFixed(1);
      (window as unknown as { pyvirtOverview: typeof timing }).pyvirtOverview = timing;
      scroller.setAttribute("aria-busy", "false");
    }, 0));
    // the host panel after the table: its requests would compete with the list's
    void host.refresh().catch(() => undefined);
  }).catch((err: ApiError) => notify(err.message, "error", err.hint));
  scroller.setAttribute("aria-busy", "true");

  return () => {
    disposed = true;
    unsubscribe();
    window.clearInterval(poll);
    window.clearTimeout(detailTimer);
    window.clearTimeout(pendingTimer);
    clear(root);
  };
}
