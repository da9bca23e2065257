// virt-manager's "Add New Virtual Hardware": Storage (a pool's volume, or a new one), Network,
// Controller, Input, Serial, RNG, Watchdog. For a running VM the dialog asks where the device
// goes: the running VM and its definition (?persistent=true, the default), the definition only
// (?config=true: next boot; for what QEMU cannot hot-plug) or the running VM only (?live=true);
// a shut-off VM's definition gets it.
import { enc, get, json, post } from "../api";
import { notify } from "../app";
import { field, h } from "../dom";
import { select } from "./details";
import { fail, modal } from "./dialogs";
import { child, children, esc } from "./xmlutil";

interface Pool { name: string; state: string; type: string }
interface Volume { name: string; path: string; format: string; capacity: number; type: string }
interface Network { name: string; active: boolean }

function freeTarget(doc: XMLDocument, prefix: string): string {
  const used = new Set(children(child(doc.documentElement, "devices"), "disk").map((d) => child(d, "target")?.getAttribute("dev") ?? ""));
  for (let i = 0; i < 26; i++) {
    const dev = prefix + String.fromCharCode(97 + i);
    if (!used.has(dev)) return dev;
  }
  return `${prefix}aa`;
}

export function addHardware(name: string, state: string, doc: XMLDocument, done: () => void): void {
  const finish = h("button", { type: "button", class: "primary" }, "Finish");
  const m = modal("Add New Virtual Hardware", [finish]);
  const kind = select([["storage", "Storage"], ["network", "Network"], ["controller", "Controller"], ["input", "Input"],
    ["serial", "Serial"], ["rng", "RNG"], ["watchdog", "Watchdog"]], "storage");
  const page = h("div", { class: "hwpage" });
  const live = state === "running" || state === "paused";
  const affect = select([["persistent", "The running VM and its definition"], ["config", "The definition only (next boot)"],
    ["live", "The running VM only (until it stops)"]], "persistent");
  m.body.append(field("Hardware type", kind), page,
    live ? field("Add to", affect, "QEMU cannot hot-plug controllers, serial ports or the ib700 watchdog: they go to the definition (next boot)") : "");
  let build: () => Promise<string> = async () => "";

  const storage = async (): Promise<void> => {
    const pools = (await get<Pool[]>("pools?all=true")).filter((p) => p.state === "running");
    const poolSel = select(pools.map((p) => p.name), pools[0]?.name ?? "");
    const volSel = h("select");
    const newName = h("input", { value: `${name}-disk.qcow2`, autocomplete: "off" });
    const size = h("input", { type: "number", value: "1", min: "0.1", step: "any" });
    const newBox = h("div", null, field("New volume name", newName), field("Size (GiB)", size));
    const device = select([["disk", "Disk device"], ["cdrom", "CD-ROM device"]], "disk");
    const bus = select(["virtio", "sata", "scsi", "usb"], "virtio");
    let vols: Volume[] = [];
    const loadVols = async (): Promise<void> => {
      vols = poolSel.value ? await get<Volume[]>(`pools/${enc(poolSel.value)}/volumes`) : [];
      volSel.replaceChildren(h("option", { value: "" }, "(create a new volume)"),
        ...vols.map((v) => h("option", { value: v.name }, v.name)));
      volSel.value = vols[0]?.name ?? "";
      newBox.hidden = !!volSel.value;
    };
    poolSel.addEventListener("change", () => void loadVols());
    volSel.addEventListener("change", () => { newBox.hidden = !!volSel.value; });
    await loadVols();
    if (kind.value !== "storage") return; // another type was chosen meanwhile
    page.replaceChildren(field("Pool", poolSel), field("Volume", volSel), newBox, field("Device type", device), field("Bus type", bus));
    build = async () => {
      let vol = vols.find((v) => v.name === volSel.value);
      if (!vol) {
        const fmt = newName.value.endsWith(".qcow2") ? "qcow2" : "raw";
        vol = await post<Volume>(`pools/${enc(poolSel.value)}/volumes`,
          { name: newName.value.trim(), capacity: Math.round(Number(size.value) * 1024 ** 3), format: fmt });
      }
      const prefix = bus.value === "virtio" ? "vd" : bus.value === "ide" ? "hd" : "sd";
      const dev = freeTarget(doc, prefix);
      const type = vol.type === "block" ? "block" : "file";
      const attr = type === "block" ? "dev" : "file";
      return `<disk type='${type}' device='${device.value}'><driver name='qemu' type='${esc(vol.format || "raw")}'/>` +
        `<source ${attr}='${esc(vol.path)}'/><target dev='${dev}' bus='${bus.value}'/></disk>`;
    };
  };

  const network = async (): Promise<void> => {
    const nets = await get<Network[]>("networks");
    if (kind.value !== "network") return; // another type was chosen meanwhile
    const src = select(nets.map((n) => n.name), nets.find((n) => n.active)?.name ?? nets[0]?.name ?? "");
    const model = select(["virtio", "e1000e", "e1000", "rtl8139"], "virtio");
    const mac = h("input", { placeholder: "generated", autocomplete: "off" });
    page.replaceChildren(field("Network source", src), field("MAC address", mac), field("Device model", model));
    build = async () => `<interface type='network'><source network='${esc(src.value)}'/>` +
      (mac.value.trim() ? `<mac address='${esc(mac.value.trim())}'/>` : "") + `<model type='${model.value}'/></interface>`;
  };

  const simple = (fields: HTMLElement[], xml: () => string): void => {
    page.replaceChildren(...fields);
    build = async () => xml();
  };

  const show = async (): Promise<void> => {
    build = async () => {
      throw new Error("the page is still loading");
    };
    m.status.textContent = "";
    if (live) affect.value = kind.value === "controller" || kind.value === "serial" ? "config" : "persistent";
    switch (kind.value) {
      case "storage": return storage();
      case "network": return network();
      case "input": {
        const t = select([["tablet", "EvTouch USB Graphics Tablet"], ["keyboard", "Keyboard"], ["mouse", "Mouse"]], "tablet");
        const bus = select(["usb", "virtio"], "usb");
        return simple([field("Type", t), field("Bus", bus)], () => `<input type='${t.value}' bus='${bus.value}'/>`);
      }
      case "controller": {
        const models: Record<string, [string, string][]> = {
          usb: [["qemu-xhci", "USB 3 (qemu-xhci)"], ["nec-xhci", "USB 3 (nec-xhci)"], ["ich9-ehci1", "USB 2 (ich9-ehci1)"], ["piix3-uhci", "USB 1 (piix3-uhci)"]],
          scsi: [["virtio-scsi", "VirtIO SCSI"], ["lsilogic", "LSI Logic"]],
          "virtio-serial": [["", "(default)"]],
          sata: [["", "(default: ICH9 AHCI)"]],
        };
        const type = select([["usb", "USB"], ["scsi", "SCSI"], ["virtio-serial", "VirtIO Serial"], ["sata", "SATA"]], "scsi");
        const model = h("select");
        const fillModels = (): void => {
          model.replaceChildren(...models[type.value]!.map(([v, l]) => h("option", { value: v }, l)));
        };
        type.addEventListener("change", fillModels);
        fillModels();
        return simple([field("Controller type", type), field("Model", model)], () => {
          const used = children(child(doc.documentElement, "devices"), "controller")
            .filter((c) => c.getAttribute("type") === type.value).map((c) => Number(c.getAttribute("index") ?? "0"));
          const index = used.length ? Math.max(...used) + 1 : 0;
          return `<controller type='${type.value}' index='${index}'${model.value ? ` model='${esc(model.value)}'` : ""}/>`;
        });
      }
      case "serial":
        return simple([h("p", null, "A serial port on a pseudo terminal (the console relay reaches it).")],
          () => "<serial type='pty'/>");
      case "rng": {
        const dev = h("input", { value: "/dev/urandom" });
        return simple([field("Host device", dev)], () => `<rng model='virtio'><backend model='random'>${esc(dev.value)}</backend></rng>`);
      }
      case "watchdog": {
        const model = select(["i6300esb", "ib700", "itco"], "i6300esb");
        const action = select(["reset", "poweroff", "shutdown", "pause", "none", "dump", "inject-nmi"], "reset");
        return simple([field("Model", model), field("Action", action)], () => `<watchdog model='${model.value}' action='${action.value}'/>`);
      }
    }
  };
  kind.addEventListener("change", () => void show().catch((e) => fail(m, e)));
  void show().catch((e) => fail(m, e));

  finish.addEventListener("click", () => void (async () => {
    finish.disabled = true;
    try {
      const xml = await build();
      await json("POST", `domains/${enc(name)}/devices?${live ? `${affect.value}=true` : "config=true"}`, { xml });
      notify(`Added ${kind.selectedOptions[0]?.textContent ?? kind.value} to ${name}`);
      m.close();
      done();
    } catch (err) {
      fail(m, err);
      finish.disabled = false;
    }
  })());
}
