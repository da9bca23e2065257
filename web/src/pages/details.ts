// A VM's page: the toolbar (Run, Shut Down, Reboot, Pause, Force Off, Console, Clone, Migrate, Delete),
// virt-manager's hardware list (Overview, CPUs, Memory, Boot Options, each Disk and NIC,
// Display, Video, Serial) with Apply, Add Hardware and Remove. Everything goes through the
// REST API: the definition is read with its ETag and written back with If-Match.
import { ApiError, enc, get, json, post, put, request } from "../api";
import { notify } from "../app";
import { clear, field, h } from "../dom";
import { subscribe } from "../events";
import { bytes } from "../format";
import { cpusSection, memorySection } from "./cpus";
import { performance } from "./graphs";
import { addHardware } from "./hardware";
import { cloneDialog, deleteDialog, migrateDialog } from "./dialogs";
import { child, children, parseXml, serialize, setAttr, setText, text } from "./xmlutil";

export interface Info {
  name: string;
  state: string;
  reason: string;
  vcpus: number;
  max_memory_kib: number;
  used_memory_kib: number;
  autostart: boolean;
  persistent: boolean;
  title: string | null;
}

export interface Section {
  id: string;
  label: string;
  /** the device element a Remove detaches (none: not removable) */
  device?: Element;
  render: (panel: HTMLElement) => void;
  /** changes the form made to the definition; false: nothing to write */
  apply?: (doc: XMLDocument) => boolean | Promise<boolean>;
  /** changes through the API once the definition is written (live changes, pinning) */
  after?: () => Promise<void>;
  /** called when another page is shown (stops the graphs' polling) */
  leave?: () => void;
}

const KEYMAPS = ["", "en-us", "en-gb", "de", "de-ch", "fr", "fr-be", "fr-ch", "it", "es", "pt", "pt-br", "nl",
  "da", "sv", "fi", "no", "pl", "cz", "hu", "ru", "ja", "tr", "is", "lt", "lv", "et", "sl", "hr", "mk", "th"];

export function select(options: (string | [string, string])[], value: string): HTMLSelectElement {
  const sel = h("select", null, ...options.map((o) => {
    const [v, label] = typeof o === "string" ? [o, o || "(default)"] : o;
    return h("option", { value: v }, label);
  }));
  if (!options.some((o) => (typeof o === "string" ? o : o[0]) === value) && value) {
    sel.append(h("option", { value }, value));
  }
  sel.value = value;
  return sel;
}

export const input = (value: string | number, props: Record<string, unknown> = {}): HTMLInputElement =>
  h("input", { value: String(value), ...props });

export function details(root: HTMLElement, params: string[]): () => void {
  const name = params[0]!;
  let info: Info | null = null;
  let doc: XMLDocument | null = null;
  let etag = "";
  let current = "overview";
  let sections: Section[] = [];
  let disposed = false;

  const title = h("h1", null, name);
  const badge = h("span", { class: "state", role: "status", "aria-label": "State" });
  const note = h("p", { class: "note", hidden: true }, "The VM is running: most changes apply at its next boot.");
  const verb = (label: string, path: string, body: unknown = {}): HTMLButtonElement =>
    h("button", { type: "button", onclick: () => void action(label, () => post(`domains/${enc(name)}/${path}`, body)) }, label);
  const run = verb("Run", "start");
  const shut = verb("Shut Down", "shutdown");
  const reboot = verb("Reboot", "reboot");
  const pause = verb("Pause", "suspend");
  const resume = verb("Resume", "resume");
  const off = verb("Force Off", "destroy");
  const consoleLink = h("a", { class: "button", href: `/ui/console.html?domain=${enc(name)}&kind=vnc`, target: "_blank", rel: "noopener" }, "Console");
  const clone = h("button", { type: "button", onclick: () => info && doc && cloneDialog(name, info.state, doc) }, "Clone");
  const migrate = h("button", { type: "button", onclick: () => info && migrateDialog(name, info.state) }, "Migrate");
  const remove = h("button", { type: "button", class: "danger", onclick: () => info && doc && deleteDialog(name, info.state, doc) }, "Delete");
  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": "VM actions" },
    run, shut, reboot, pause, resume, off, consoleLink, clone, migrate, remove);
  const tabs = h("nav", { class: "tabs", "aria-label": "VM pages" },
    h("a", { href: `#/vm/${enc(name)}`, "aria-current": "page" }, "Details"),
    h("a", { href: `#/vm/${enc(name)}/snapshots` }, "Snapshots"));
  const list = h("ul", { class: "hwlist", "aria-label": "Hardware" });
  const panel = h("section", { class: "panel", "aria-live": "polite" });
  const addBtn = h("button", { type: "button", onclick: () => doc && info && addHardware(name, info.state, doc, () => void load()) }, "Add Hardware");
  const removeBtn = h("button", { type: "button", onclick: () => void removeDevice() }, "Remove");
  const applyBtn = h("button", { type: "button", class: "primary", onclick: () => void apply() }, "Apply");

  root.append(h("div", { class: "vmhead" }, title, badge), toolbar, tabs, note,
    h("div", { class: "details" },
      h("div", { class: "side" }, list, h("div", { class: "sidebtns" }, addBtn, removeBtn)),
      h("div", { class: "main" }, panel, h("div", { class: "applybar" }, applyBtn))));

  async function action(label: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
      notify(`${label}: ${name}`);
      await refreshState();
    } catch (err) {
      const e = err as ApiError;
      notify(`${label} ${name}: ${e.message}`, "error", e.hint);
    }
  }

  function showState(): void {
    if (!info) return;
    badge.textContent = info.state;
    for (const dd of panel.querySelectorAll(".vmstate")) dd.textContent = `${info.state} (${info.reason})`;
    badge.className = `state ${info.state.replace(/\s+/g, "-")}`;
    const up = info.state === "running";
    const paused = info.state === "paused";
    run.disabled = up || paused;
    shut.disabled = reboot.disabled = !up;
    pause.disabled = !up;
    resume.hidden = !paused;
    pause.hidden = paused;
    off.disabled = !(up || paused);
    migrate.disabled = !(up || paused);
    consoleLink.hidden = !(up || paused);
    note.hidden = !(up || paused);
  }

  async function refreshState(): Promise<void> {
    const st = await get<{ state: string; reason: string }>(`domains/${enc(name)}/state`);
    if (info) {
      info.state = st.state;
      info.reason = st.reason;
    }
    showState();
  }

  async function load(): Promise<void> {
    const [i, resp] = await Promise.all([
      get<Info>(`domains/${enc(name)}`),
      request("GET", `domains/${enc(name)}/xml?inactive=true`),
    ]);
    if (disposed) return;
    info = i;
    etag = resp.headers.get("etag") ?? "";
    doc = parseXml(await resp.text());
    showState();
    sections = buildSections(doc, info);
    paintList();
    show(sections.some((s) => s.id === current) ? current : "overview");
  }

  function paintList(): void {
    clear(list);
    for (const s of sections) {
      list.append(h("li", null, h("button", { type: "button", class: "hw", "aria-current": s.id === current ? "true" : "false",
        onclick: () => show(s.id) }, s.label)));
    }
  }

  let shown: Section | null = null;

  function show(id: string): void {
    shown?.leave?.();
    current = id;
    const s = sections.find((x) => x.id === id)!;
    shown = s;
    clear(panel);
    panel.append(h("h2", null, s.label));
    s.render(panel);
    for (const b of list.querySelectorAll("button")) b.setAttribute("aria-current", b.textContent === s.label ? "true" : "false");
    removeBtn.disabled = !s.device;
    applyBtn.disabled = !s.apply;
  }

  async function apply(): Promise<void> {
    const s = sections.find((x) => x.id === current);
    if (!s?.apply || !doc) return;
    try {
      const copy = parseXml(serialize(doc));
      const changed = await s.apply(copy);
      if (changed) {
        // after a rename the revision changed: the new name's definition is written as is
        const res = await json<{ warnings: string[] }>("PUT", `domains/${enc(renamed ?? name)}/xml`, {
          xml: serialize(copy), headers: etag && !renamed ? { "If-Match": etag } : {},
        });
        for (const w of res?.warnings ?? []) notify(w);
      }
      await s.after?.();
      notify("Changes applied");
      if (renamed && renamed !== name) {
        window.location.hash = `#/vm/${enc(renamed)}`;
        return;
      }
      await load();
    } catch (err) {
      const e = err as ApiError;
      notify(e.message, "error", e.hint);
      if (renamed && renamed !== name) window.location.hash = `#/vm/${enc(renamed)}`;
    } finally {
      renamed = null;
    }
  }

  async function removeDevice(): Promise<void> {
    const s = sections.find((x) => x.id === current);
    if (!s?.device || !info) return;
    if (!window.confirm(`Remove ${s.label} from ${name}?`)) return;
    const live = info.state === "running" || info.state === "paused";
    try {
      await json("POST", `domains/${enc(name)}/devices/detach?${live ? "persistent=true" : "config=true"}`, {
        xml: new XMLSerializer().serializeToString(s.device),
      });
      notify(`${s.label} removed`);
      current = "overview";
      await load();
    } catch (err) {
      const e = err as ApiError;
      notify(e.message, "error", e.hint);
    }
  }

  let renamed: string | null = null;

  /** The Disk page's "Size" fieldset: the capacity now and a Resize button (block_resize
   * while the VM runs: the guest sees the new size; qemu-img resize when it is shut off). */
  function resizeForm(dev: string): HTMLElement {
    const cap = h("output", { "aria-label": "Capacity" }, "…");
    const size = h("input", { type: "number", min: "0", step: "any", autocomplete: "off" });
    const unit = select([["MiB", "MiB"], ["GiB", "GiB"], ["TiB", "TiB"]], "GiB");
    const mult: Record<string, number> = { MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
    const showCap = (n: number): void => {
      cap.textContent = bytes(n);
      const u = n >= 1024 ** 4 ? "TiB" : n >= 1024 ** 3 ? "GiB" : "MiB";
      unit.value = u;
      size.value = String(Math.round((n / mult[u]!) * 100) / 100);
    };
    void get<{ capacity: number }>(`domains/${enc(name)}/disks/${enc(dev)}`)
      .then((b) => showCap(b.capacity)).catch(() => { cap.textContent = "unknown"; });
    const live = info?.state === "running" || info?.state === "paused";
    const btn = h("button", {
      type: "button", onclick: () => void (async () => {
        btn.disabled = true;
        try {
          const bytesWanted = Math.round(Number(size.value) * mult[unit.value]!);
          const r = await post<{ capacity: number; live: boolean }>(`domains/${enc(name)}/disks/${enc(dev)}/resize`, { size: bytesWanted });
          showCap(r.capacity);
          notify(`Disk ${dev} resized to ${bytes(r.capacity)}${r.live ? " (the running guest sees it now)" : ""}`);
        } catch (err) {
          const e = err as ApiError;
          notify(e.message, "error", e.hint);
        } finally {
          btn.disabled = false;
        }
      })(),
    }, "Resize");
    return h("fieldset", null, h("legend", null, "Size"),
      h("p", null, "Capacity: ", cap),
      h("div", { class: "inline" }, field("New size", size), field("Unit", unit), btn),
      h("small", { class: "hint" }, live ? "Grows the disk of the running VM now (block_resize); the guest sees the new size. Disks only grow."
        : "Grows the image (qemu-img resize). Disks only grow; the guest's partitions and file systems stay as they are."));
  }

  function buildSections(d: XMLDocument, i: Info): Section[] {
    const dom = d.documentElement;
    const devs = child(dom, "devices", true)!;
    const out: Section[] = [];

    // -- Overview
    {
      const nameIn = input(name, { autocomplete: "off" });
      const titleIn = input(text(dom, "title"));
      const descIn = h("textarea", { rows: 3 }, text(dom, "description"));
      out.push({
        id: "overview", label: "Overview",
        render: (p) => p.append(
          field("Name", nameIn, i.state === "shut off" ? undefined : "a running VM keeps its name until it is shut off"),
          field("Title", titleIn), field("Description", descIn),
          h("dl", { class: "facts" }, h("dt", null, "UUID"), h("dd", null, text(dom, "uuid")),
            h("dt", null, "State"), h("dd", { class: "vmstate" }, `${i.state} (${i.reason})`),
            h("dt", null, "Autostart"), h("dd", null, i.autostart ? "yes" : "no"))),
        apply: async (c) => {
          const newName = nameIn.value.trim();
          if (newName && newName !== name) {
            await post(`domains/${enc(name)}/rename`, { new_name: newName });
            renamed = newName;
            setText(c.documentElement, "name", newName);
          }
          setText(c.documentElement, "title", titleIn.value);
          setText(c.documentElement, "description", descIn.value);
          return true;
        },
      });
    }

    // -- Performance (graphs of the last hour), CPUs, Memory: pages of their own modules
    {
      let stop: (() => void) | null = null;
      out.push({
        id: "performance", label: "Performance",
        render: (p) => {
          stop?.();
          const g = performance(name, () => info?.vcpus ?? i.vcpus);
          stop = g.stop;
          p.append(g.el);
        },
        leave: () => {
          stop?.();
          stop = null;
        },
      });
    }
    out.push(cpusSection(name, dom, i), memorySection(name, dom, i));

    // -- Boot options
    {
      const os = child(dom, "os", true)!;
      const order = children(os, "boot").map((b) => b.getAttribute("dev") ?? "");
      const boxes = (["hd", "cdrom", "network"] as const).map((dev) =>
        [dev, h("input", { type: "checkbox", checked: order.includes(dev) })] as const);
      const auto = h("input", { type: "checkbox", checked: i.autostart });
      const menu = h("input", { type: "checkbox", checked: child(os, "bootmenu")?.getAttribute("enable") === "yes" });
      const labels: Record<string, string> = { hd: "Hard disk", cdrom: "CD-ROM", network: "Network (PXE)" };
      out.push({
        id: "boot", label: "Boot Options",
        render: (p) => p.append(
          h("label", { class: "check" }, auto, " Start virtual machine on host boot up"),
          h("fieldset", null, h("legend", null, "Boot device order"),
            ...boxes.map(([dev, box]) => h("label", { class: "check" }, box, ` ${labels[dev]}`))),
          h("label", { class: "check" }, menu, " Enable boot menu"),
          ...(child(os, "kernel") ? [h("p", { class: "hint" }, `Direct kernel boot: ${text(os, "kernel")}`)] : [])),
        apply: async (c) => {
          if (auto.checked !== i.autostart) await put(`domains/${enc(name)}/autostart`, { enabled: auto.checked });
          const cos = child(c.documentElement, "os", true)!;
          for (const b of children(cos, "boot")) b.remove();
          const has = children(devs, "disk").some((x) => x.querySelector("boot")) || children(devs, "interface").some((x) => x.querySelector("boot"));
          if (!has) {
            for (const [dev, box] of boxes) {
              if (box.checked) {
                const b = c.createElement("boot");
                b.setAttribute("dev", dev);
                cos.append(b);
              }
            }
          }
          if (menu.checked) child(cos, "bootmenu", true)!.setAttribute("enable", "yes");
          else child(cos, "bootmenu")?.remove();
          return true;
        },
      });
    }

    // -- Disks
    children(devs, "disk").forEach((disk, n) => {
      const target = child(disk, "target");
      const dev = target?.getAttribute("dev") ?? `disk${n}`;
      const src = child(disk, "source");
      const path = src?.getAttribute("file") ?? src?.getAttribute("dev") ?? (src?.getAttribute("volume") ? `${src.getAttribute("pool")}/${src.getAttribute("volume")}` : "");
      const drv = child(disk, "driver");
      const bus = select(["virtio", "sata", "scsi", "ide", "usb"], target?.getAttribute("bus") ?? "");
      const cache = select(["", "none", "writeback", "writethrough", "directsync", "unsafe"], drv?.getAttribute("cache") ?? "");
      const ro = h("input", { type: "checkbox", checked: !!child(disk, "readonly") });
      const kind = disk.getAttribute("device") ?? "disk";
      const label = `${kind === "cdrom" ? "CD-ROM" : kind === "floppy" ? "Floppy" : "Disk"} ${dev}`;
      out.push({
        id: `disk-${dev}`, label, device: disk,
        render: (p) => p.append(
          h("dl", { class: "facts" }, h("dt", null, "Source"), h("dd", null, path || "(empty)"),
            h("dt", null, "Format"), h("dd", null, drv?.getAttribute("type") ?? "raw"),
            h("dt", null, "Target"), h("dd", null, dev)),
          field("Disk bus", bus), field("Cache mode", cache),
          h("label", { class: "check" }, ro, " Read-only"),
          kind === "disk" && path ? resizeForm(dev) : ""),
        apply: (c) => {
          const el = children(child(c.documentElement, "devices")!, "disk")[n]!;
          const t = child(el, "target", true)!;
          t.setAttribute("bus", bus.value);
          const dr = child(el, "driver", !!cache.value);
          if (dr) setAttr(dr, "cache", cache.value);
          if (ro.checked) child(el, "readonly", true);
          else child(el, "readonly")?.remove();
          return true;
        },
      });
    });

    // -- NICs
    children(devs, "interface").forEach((nic, n) => {
      const mac = child(nic, "mac")?.getAttribute("address") ?? "";
      const type = nic.getAttribute("type") ?? "network";
      const src = child(nic, "source");
      const srcType = select([["network", "Virtual network"], ["bridge", "Bridge device"], ["user", "Usermode networking"], ["direct", "Macvtap device"]], type);
      const source = input(src?.getAttribute("network") ?? src?.getAttribute("bridge") ?? src?.getAttribute("dev") ?? "", { autocomplete: "off" });
      const model = select(["virtio", "e1000e", "e1000", "rtl8139"], child(nic, "model")?.getAttribute("type") ?? "");
      const link = select([["up", "up"], ["down", "down"]], child(nic, "link")?.getAttribute("state") ?? "up");
      out.push({
        id: `nic-${mac || n}`, label: `NIC ${mac || `${n + 1} (${type})`}`, device: nic,
        render: (p) => p.append(field("Network source", srcType), field("Source name", source, "the network, bridge or host device"),
          field("Device model", model), field("MAC address", input(mac, { readOnly: true })), field("Link state", link)),
        apply: (c) => {
          const el = children(child(c.documentElement, "devices")!, "interface")[n]!;
          el.setAttribute("type", srcType.value);
          const s = child(el, "source", srcType.value !== "user");
          if (s) {
            for (const a of ["network", "bridge", "dev", "mode", "portgroup"]) s.removeAttribute(a);
            if (srcType.value === "user") s.remove();
            else s.setAttribute(srcType.value === "direct" ? "dev" : srcType.value, source.value.trim());
            if (srcType.value === "direct") s.setAttribute("mode", "bridge");
          }
          child(el, "model", true)!.setAttribute("type", model.value);
          if (link.value === "down") child(el, "link", true)!.setAttribute("state", "down");
          else child(el, "link")?.remove();
          return true;
        },
      });
    });

    // -- Display
    children(devs, "graphics").forEach((g, n) => {
      const type = g.getAttribute("type") ?? "vnc";
      const listen = input(child(g, "listen")?.getAttribute("address") ?? g.getAttribute("listen") ?? "");
      const port = input(g.getAttribute("autoport") === "no" ? g.getAttribute("port") ?? "" : "", { placeholder: "auto" });
      const pw = input(g.getAttribute("passwd") ?? "", { type: "password", autocomplete: "new-password" });
      const keymap = select(KEYMAPS, g.getAttribute("keymap") ?? "");
      out.push({
        id: `display-${n}`, label: `Display ${type.toUpperCase()}`, device: g,
        render: (p) => p.append(field("Type", input(type, { readOnly: true })), field("Address", listen, "empty: the host's loopback"),
          field("Port", port), field("Password", pw), field("Keymap", keymap, "the web console sends scancodes: any layout works without it")),
        apply: (c) => {
          const el = children(child(c.documentElement, "devices")!, "graphics")[n]!;
          setAttr(el, "keymap", keymap.value);
          setAttr(el, "passwd", pw.value);
          if (port.value) {
            el.setAttribute("autoport", "no");
            el.setAttribute("port", port.value);
          } else {
            el.removeAttribute("port");
            el.setAttribute("autoport", "yes");
          }
          el.removeAttribute("listen");
          for (const l of children(el, "listen")) l.remove();
          if (listen.value.trim()) {
            const l = c.createElement("listen");
            l.setAttribute("type", "address");
            l.setAttribute("address", listen.value.trim());
            el.append(l);
          }
          return true;
        },
      });
    });

    // -- Video
    children(devs, "video").forEach((v, n) => {
      const model = select(["virtio", "vga", "bochs", "qxl", "cirrus", "ramfb", "none"], child(v, "model")?.getAttribute("type") ?? "");
      out.push({
        id: `video-${n}`, label: `Video ${(child(v, "model")?.getAttribute("type") ?? "").toUpperCase()}`, device: v,
        render: (p) => p.append(field("Model", model)),
        apply: (c) => {
          const el = children(child(c.documentElement, "devices")!, "video")[n]!;
          const m = child(el, "model", true)!;
          for (const a of Array.from(m.attributes)) m.removeAttribute(a.name);
          m.setAttribute("type", model.value);
          return true;
        },
      });
    });

    // -- Serial, console, input, RNG, watchdog: shown; Remove works on them
    children(devs, "serial").forEach((s, n) => {
      out.push({
        id: `serial-${n}`, label: `Serial ${n + 1}`, device: s,
        render: (p) => p.append(h("dl", { class: "facts" },
          h("dt", null, "Type"), h("dd", null, s.getAttribute("type") ?? ""),
          h("dt", null, "Port"), h("dd", null, child(s, "target")?.getAttribute("port") ?? String(n))),
        h("p", null, h("a", { href: `/ui/console.html?domain=${enc(name)}&kind=serial`, target: "_blank", rel: "noopener" }, "Open the serial console"))),
      });
    });
    for (const [tag, label] of [["input", "Input"], ["rng", "RNG"], ["watchdog", "Watchdog"], ["controller", "Controller"]] as const) {
      children(devs, tag).forEach((el, n) => {
        const kind = el.getAttribute("type") ?? el.getAttribute("model") ?? "";
        if (tag === "controller" && (kind === "pci" || kind === "ide" || kind === "fdc")) return;
        const model = tag === "controller" && el.getAttribute("model") ? ` ${el.getAttribute("model")}` : "";
        out.push({
          id: `${tag}-${n}`, label: `${label} ${kind}${model}`.trim(), device: el,
          render: (p) => p.append(h("pre", { class: "xml" }, new XMLSerializer().serializeToString(el))),
        });
      });
    }
    return out;
  }

  const unsubscribe = subscribe((ev) => {
    if (ev.object !== "domain" || ev.name !== name) return;
    if (ev.kind === "lifecycle" && ev.event === "Undefined") {
      notify(`${name} was deleted`);
      window.location.hash = "#/";
      return;
    }
    if (ev.kind === "lifecycle" && ev.event === "Defined") void load().catch(() => undefined);
    else void refreshState().catch(() => undefined);
  });

  void load().catch((err: ApiError) => {
    panel.append(h("p", { role: "alert" }, err.message));
  });
  return () => {
    disposed = true;
    shown?.leave?.();
    unsubscribe();
  };
}
