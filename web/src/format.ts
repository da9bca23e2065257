// Number formatting shared by the pages.

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export const kib = (n: number | null | undefined): string => (n === null || n === undefined ? "" : bytes(n * 1024));

export function pct(n: number): string {
  return `${n.toFixed(n < 10 ? 1 : 0)} %`;
}

/** An inline SVG sparkline of values in 0..100. */
export function sparkline(values: number[], label: string): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 60 16");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  if (values.length > 1) {
    const step = 60 / (values.length - 1);
    const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(16 - Math.min(100, Math.max(0, v)) * 0.16).toFixed(1)}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  }
  return svg;
}

/** A labelled meter bar (host usage). */
export function meterText(used: number, total: number, fmt: (n: number) => string): string {
  return total > 0 ? `${fmt(used)} of ${fmt(total)} (${pct((used / total) * 100)})` : "";
}
