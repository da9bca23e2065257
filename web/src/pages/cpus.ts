// The CPUs and Memory pages of a VM. The definition's part (vCPU counts, CPU model, topology,
// memory sizes, huge pages) is written with the rest of the XML on Apply; pinning, the live
// vCPU count and the balloon go through the tuning API after it (GET/PUT .../cpus, vcpupin,
// emulatorpin, vcpus, memory), to the definition and, when chosen, to the running VM. The
// NUMA advisor's findings come from GET .../cpus.
import { enc, get, put } from "../api";
import { field, h } from "../dom";
import { bytes } from "../format";
import type { Info, Section } from "./details";
import { input, select } from "./details";
import { child, kibOf, setText, text } from "./xmlutil";

interface Advice { level: string; code: string; message: string; hint: string }
interface CpuFacts {
  vcpus: { maximum: { config?: number; live?: number }; current: { config?: number; live?: number } };
  host_cpus: number;
  running: boolean;
  pins: Record<string, string>;
  config_pins: Record<string, string>;
  emulator: string;
  advice: Advice[];
}
interface MemFacts {
  running: boolean;
  maximum_kib: number;
  current_kib: number;
  balloon_kib: number | null;
  stats: Record<string, number>;
}

const up = (i: Info): boolean => i.state === "running" || i.state === "paused";

/** "Change the running VM too" (checked), shown only while it runs. */
function liveBox(i: Info): HTMLInputElement {
  return h("input", { type: "checkbox", checked: true, disabled: !up(i) });
}

export function cpusSection(name: string, dom: Element, i: Info): Section {
  const vcpu = child(dom, "vcpu");
  const maxCount = Number(vcpu?.textContent ?? "1") || 1;
  const curCount = Number(vcpu?.getAttribute("current") ?? maxCount) || maxCount;
  const current = input(curCount, { type: "number", min: 1, max: 4096 });
  const maximum = input(maxCount, { type: "number", min: 1, max: 4096 });
  const cpu = child(dom, "cpu");
  const topo = child(cpu ?? dom, "topology");
  const sockets = input(topo?.getAttribute("sockets") ?? "", { type: "number", min: 1 });
  const cores = input(topo?.getAttribute("cores") ?? "", { type: "number", min: 1 });
  const threads = input(topo?.getAttribute("threads") ?? "", { type: "number", min: 1 });
  const mode = cpu?.getAttribute("mode") ?? "";
  const model = select(["", "host-passthrough", "host-model", "qemu64", "max"],
    mode === "host-passthrough" || mode === "host-model" ? mode : text(cpu ?? dom, "model"));
  const live = liveBox(i);
  const pinBox = h("div", { class: "pins" }, h("p", { class: "hint" }, "Reading the pinning…"));
  const adviceBox = h("div", { class: "advice" });
  const pinInputs = new Map<number, HTMLInputElement>();
  let emulatorIn: HTMLInputElement | null = null;
  let facts: CpuFacts | null = null;

  const fill = async (): Promise<void> => {
    facts = await get<CpuFacts>(`domains/${enc(name)}/cpus`);
    const f = facts;
    const all = `0-${f.host_cpus - 1}`;
    const rows = Object.entries(f.pins).map(([v, cpus]) => {
      const inp = input(cpus === all ? "" : cpus, { placeholder: `all (${all})`, autocomplete: "off", size: 12 });
      inp.dataset.was = inp.value;
      pinInputs.set(Number(v), inp);
      return field(`Pin vCPU ${v}`, inp);
    });
    emulatorIn = input(f.emulator === all ? "" : f.emulator, { placeholder: `all (${all})`, autocomplete: "off", size: 12 });
    emulatorIn.dataset.was = emulatorIn.value;
    const lc = f.vcpus.current.live;
    pinBox.replaceChildren(
      h("p", null, `Host CPUs: ${f.host_cpus}`,
        lc !== undefined ? `; vCPUs running now: ${lc} of ${f.vcpus.maximum.live ?? lc}` : ""),
      ...rows, field("Pin emulator threads", emulatorIn, "host CPUs such as 0-1,3; empty: any host CPU"));
    adviceBox.replaceChildren(h("h3", null, "NUMA advisor"), f.advice.length
      ? h("ul", { "aria-label": "NUMA advisor warnings" }, ...f.advice.map((a) =>
        h("li", { class: a.level === "error" ? "adv-error" : "adv-warning" }, h("strong", null, `${a.level}: `),
          a.message, h("br"), h("small", null, `instead, ${a.hint}`))))
      : h("p", { role: "status" }, "No warnings: the vCPUs and memory fit the host's NUMA layout."));
  };

  return {
    id: "cpus", label: "CPUs",
    render: (p) => {
      pinInputs.clear();
      p.append(field("Current vCPUs", current, up(i) ? "more than now: hot-plugged when the change goes to the running VM" : undefined),
        field("Maximum vCPUs", maximum, "the most it may get (definition: next boot)"), field("CPU model", model),
        h("fieldset", null, h("legend", null, "Topology (empty: one socket per vCPU)"),
          field("Sockets", sockets), field("Cores", cores), field("Threads", threads)),
        h("fieldset", null, h("legend", null, "Pinning"), pinBox),
        up(i) ? h("label", { class: "check" }, live, " Change the running VM too (vCPU count, pinning)") : "",
        adviceBox);
      void fill().catch((e: Error) => pinBox.replaceChildren(h("p", { role: "alert" }, e.message)));
    },
    apply: (c) => {
      const root = c.documentElement;
      const v = child(root, "vcpu", true)!;
      v.textContent = maximum.value;
      if (Number(current.value) < Number(maximum.value)) v.setAttribute("current", current.value);
      else v.removeAttribute("current");
      const el = child(root, "cpu", !!(sockets.value || model.value));
      if (el) {
        const m = model.value;
        if (m === "host-passthrough" || m === "host-model") {
          el.setAttribute("mode", m);
          child(el, "model")?.remove();
        } else if (m) {
          el.setAttribute("mode", "custom");
          setText(el, "model", m);
        } else {
          el.removeAttribute("mode");
          child(el, "model")?.remove();
        }
        if (sockets.value && cores.value && threads.value) {
          const t = child(el, "topology", true)!;
          t.setAttribute("sockets", sockets.value);
          t.setAttribute("cores", cores.value);
          t.setAttribute("threads", threads.value);
        } else {
          child(el, "topology")?.remove();
        }
        if (!el.attributes.length && !el.children.length) el.remove();
      }
      return true;
    },
    after: async () => {
      const f = facts;
      const toLive = up(i) && live.checked;
      if (toLive && Number(current.value) !== (f?.vcpus.current.live ?? curCount)) {
        await put(`domains/${enc(name)}/vcpus`, { count: Number(current.value), live: true });
      }
      if (!f) return;
      const all = `0-${f.host_cpus - 1}`;
      for (const [v, inp] of pinInputs) {
        if (inp.value.trim() === inp.dataset.was) continue;
        await put(`domains/${enc(name)}/vcpupin`, { vcpu: v, cpulist: inp.value.trim() || all, config: true, live: toLive });
      }
      if (emulatorIn && emulatorIn.value.trim() !== emulatorIn.dataset.was) {
        await put(`domains/${enc(name)}/emulatorpin`, { cpulist: emulatorIn.value.trim() || all, config: true, live: toLive });
      }
    },
  };
}

export function memorySection(name: string, dom: Element, i: Info): Section {
  const maxKib = kibOf(child(dom, "memory"));
  const curKib = kibOf(child(dom, "currentMemory")) || maxKib;
  const cur = input(Math.round(curKib / 1024), { type: "number", min: 16 });
  const max = input(Math.round(maxKib / 1024), { type: "number", min: 16 });
  const huge = h("input", { type: "checkbox", checked: !!child(child(dom, "memoryBacking") ?? dom, "hugepages") });
  const live = liveBox(i);
  const now = h("dl", { class: "facts" });
  let balloon: number | null = null;

  const fill = async (): Promise<void> => {
    const m = await get<MemFacts>(`domains/${enc(name)}/memory`);
    balloon = m.balloon_kib;
    const rows: [string, string][] = [];
    if (m.running) {
      rows.push(["Balloon now", m.balloon_kib === null ? "no balloon" : bytes(m.balloon_kib * 1024)]);
      if (m.stats.rss !== undefined) rows.push(["QEMU resident", bytes(m.stats.rss * 1024)]);
      if (m.stats.available !== undefined && m.stats.unused !== undefined) {
        rows.push(["Used by the guest", bytes((m.stats.available - m.stats.unused) * 1024)]);
      }
    } else {
      rows.push(["State", "shut off: the sizes apply at the next boot"]);
    }
    now.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
  };

  return {
    id: "memory", label: "Memory",
    render: (p) => {
      p.append(field("Current allocation (MiB)", cur, up(i) ? "the balloon target when the change goes to the running VM" : undefined),
        field("Maximum allocation (MiB)", max, "definition: next boot"),
        h("label", { class: "check" }, huge, " Back the memory with huge pages (next boot)"),
        up(i) ? h("label", { class: "check" }, live, " Change the running VM too (balloon)") : "",
        now);
      void fill().catch(() => undefined);
    },
    apply: (c) => {
      const root = c.documentElement;
      const mem = child(root, "memory", true)!;
      mem.setAttribute("unit", "KiB");
      mem.textContent = String(Number(max.value) * 1024);
      const cm = child(root, "currentMemory", true)!;
      cm.setAttribute("unit", "KiB");
      cm.textContent = String(Number(cur.value) * 1024);
      const mb = child(root, "memoryBacking", huge.checked);
      if (mb) {
        if (huge.checked) child(mb, "hugepages", true);
        else child(mb, "hugepages")?.remove();
        if (!mb.children.length) mb.remove();
      }
      return true;
    },
    after: async () => {
      const kib = Number(cur.value) * 1024;
      if (up(i) && live.checked && kib !== (balloon ?? curKib)) {
        await put(`domains/${enc(name)}/memory`, { kib, live: true });
      }
    },
  };
}
