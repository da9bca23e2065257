// The Performance page of a VM: CPU, memory, disk and network I/O over the last hour, drawn
// as SVG line charts by the small routine below (no chart library). The daemon keeps the
// samples (GET /api/v1/domains/NAME/stats/history, columns); the page polls for the samples
// after the last one it has, every sampling interval.
import { enc, get } from "../api";
import { h } from "../dom";
import { bytes, pct } from "../format";

export interface History {
  interval: number;
  max_kib: number | null;
  t: number[];
  cpu: (number | null)[];
  mem_current_kib: (number | null)[];
  mem_used_kib: (number | null)[];
  mem_rss_kib: (number | null)[];
  disk_rd_bps: (number | null)[];
  disk_wr_bps: (number | null)[];
  net_rx_bps: (number | null)[];
  net_tx_bps: (number | null)[];
}

type Column = Exclude<keyof History, "interval" | "max_kib" | "t">;
const COLUMNS: Column[] = ["cpu", "mem_current_kib", "mem_used_kib", "mem_rss_kib",
  "disk_rd_bps", "disk_wr_bps", "net_rx_bps", "net_tx_bps"];
const HOUR = 3600;
const NS = "http://www.w3.org/2000/svg";
const W = 600;
const H = 110;
const COLORS = ["#2a6ebb", "#c2571a", "#2e7d32"];

interface Series { label: string; values: (number | null)[] }

function svgEl<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A rounded-up axis maximum: 1, 2 or 5 times a power of ten. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** One chart: an SVG with a polyline per series (gaps where a value is unknown), its title,
 * and a legend with each series' latest value. `max`: a fixed top of the y axis. */
export function lineChart(title: string, times: number[], series: Series[],
  fmt: (n: number) => string, max?: number, fixed = false): HTMLElement {
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", preserveAspectRatio: "none" });
  const last = times.length ? times[times.length - 1]! : Date.now() / 1000;
  const first = times.length ? times[0]! : last;
  const span = Math.min(HOUR, Math.max(60, last - first));
  const x0 = last - span;
  // the top of the y axis: `max` when fixed; else the largest value (at least `max`), rounded up
  let top = max ?? 0;
  if (!fixed) for (const s of series) for (const v of s.values) if (v !== null && v > top) top = v;
  if (max === undefined) top = niceMax(top); // else at least max: the VM's maximum memory
  svg.append(svgEl("rect", { x: 0, y: 0, width: W, height: H, fill: "#fff", stroke: "#c9d1d9" }));
  for (const f of [0.25, 0.5, 0.75]) {
    svg.append(svgEl("line", { x1: 0, x2: W, y1: H * f, y2: H * f, stroke: "#e5e9ee" }));
  }
  const legend = h("ul", { class: "legend" });
  series.forEach((s, n) => {
    const color = COLORS[n % COLORS.length]!;
    let run: string[] = [];
    const flush = (): void => {
      if (run.length > 1) {
        svg.append(svgEl("polyline", { points: run.join(" "), fill: "none", stroke: color, "stroke-width": 1.5,
          "vector-effect": "non-scaling-stroke", "data-series": s.label }));
      }
      run = [];
    };
    times.forEach((t, i) => {
      const v = s.values[i];
      if (v === null || v === undefined || t < x0) {
        flush();
        return;
      }
      const x = ((t - x0) / span) * W;
      const y = H - (Math.min(v, top) / top) * (H - 2) - 1;
      run.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    flush();
    let now: number | null = null;
    for (let i = s.values.length - 1; i >= 0 && now === null; i--) now = s.values[i] ?? null;
    legend.append(h("li", null, h("span", { class: "swatch", style: `background:${color}` }),
      `${s.label}: `, h("output", { "aria-label": `${title} ${s.label}` }, now === null ? "–" : fmt(now))));
  });
  svg.setAttribute("aria-label", `${title} graph, last ${Math.round(span / 60)} minutes`);
  return h("figure", { class: "graph" }, h("figcaption", null, h("strong", null, title),
    h("small", null, ` top ${fmt(top)}, last ${Math.round(span / 60)} min`)), svg, legend);
}

/** The Performance page's content; `vcpus()` gives the vCPU count (CPU % is of the guest's
 * vCPUs). Returns the element and a function that stops the polling. */
export function performance(name: string, vcpus: () => number): { el: HTMLElement; stop: () => void } {
  const el = h("div", { class: "graphs" }, h("p", { class: "hint" }, "Loading the statistics…"));
  let hist: History | null = null;
  let timer: number | undefined;
  let stopped = false;

  const paint = (): void => {
    if (!hist) return;
    const d = hist;
    const n = Math.max(1, vcpus());
    const mib = (v: number | null): number | null => (v === null ? null : v * 1024);
    const empty = d.t.length === 0;
    el.replaceChildren(
      empty ? h("p", { class: "hint" }, "No samples yet: the daemon samples running VMs every "
        + `${d.interval} s.`) : "",
      lineChart("CPU usage", d.t, [{ label: "CPU", values: d.cpu.map((v) => (v === null ? null : v / n)) }], pct, 100, true),
      lineChart("Memory", d.t, [
        { label: "Current (balloon)", values: d.mem_current_kib.map(mib) },
        { label: "Used by the guest", values: d.mem_used_kib.map(mib) },
        { label: "QEMU resident", values: d.mem_rss_kib.map(mib) },
      ], bytes, d.max_kib ? d.max_kib * 1024 : undefined),
      lineChart("Disk I/O", d.t, [
        { label: "Read", values: d.disk_rd_bps }, { label: "Write", values: d.disk_wr_bps },
      ], (v) => `${bytes(v)}/s`),
      lineChart("Network I/O", d.t, [
        { label: "Received", values: d.net_rx_bps }, { label: "Sent", values: d.net_tx_bps },
      ], (v) => `${bytes(v)}/s`),
    );
  };

  const poll = async (): Promise<void> => {
    const since = hist && hist.t.length ? hist.t[hist.t.length - 1]! : 0;
    const more = await get<History>(`domains/${enc(name)}/stats/history${since ? `?since=${since}` : ""}`);
    if (stopped) return;
    if (!hist || !since) {
      hist = more;
    } else {
      hist.max_kib = more.max_kib;
      hist.t.push(...more.t);
      for (const c of COLUMNS) (hist[c] as (number | null)[]).push(...more[c]);
      const keep = hist.t.findIndex((t) => t > hist!.t[hist!.t.length - 1]! - HOUR);
      if (keep > 0) {
        hist.t.splice(0, keep);
        for (const c of COLUMNS) hist[c].splice(0, keep);
      }
    }
    paint();
  };

  const loop = (): void => {
    void poll().catch(() => undefined).finally(() => {
      if (!stopped) timer = window.setTimeout(loop, Math.max(1, hist?.interval ?? 5) * 1000);
    });
  };
  loop();
  return {
    el,
    stop: () => {
      stopped = true;
      window.clearTimeout(timer);
    },
  };
}
