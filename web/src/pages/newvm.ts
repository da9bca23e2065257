// The New VM wizard, virt-install's paths first: import an existing disk image, or install
// from local media (an ISO volume); memory, CPUs, network; direct kernel boot under Advanced.
// The definition it makes is shown before it is defined ("Finish"); with "Customize
// configuration before install" the VM is defined and its details open instead of starting.
import { ApiError, enc, get, json, post } from "../api";
import { notify } from "../app";
import { field, h, uid } from "../dom";
import { select } from "./details";
import { esc } from "./xmlutil";

interface Pool { name: string; state: string }
interface Volume { name: string; path: string; format: string; type: string }
interface Network { name: string; active: boolean }

export function newVm(root: HTMLElement): void {
  const name = h("input", { autocomplete: "off", required: true });
  const methodName = uid("method");
  const radio = (value: string, label: string, checked = false): HTMLElement => {
    const r = h("input", { type: "radio", name: methodName, value, checked });
    r.addEventListener("change", () => sync());
    return h("label", { class: "check" }, r, ` ${label}`);
  };
  const methods = h("fieldset", null, h("legend", null, "How would you like to install the operating system?"),
    radio("import", "Import existing disk image", true), radio("iso", "Local install media (ISO image)"));
  const method = (): string => (methods.querySelector<HTMLInputElement>("input:checked")?.value ?? "import");

  const diskPool = h("select");
  const diskVol = h("select");
  const isoPool = h("select");
  const isoVol = h("select");
  const newSize = h("input", { type: "number", value: "8", min: "0.1", step: "any" });
  const bus = select(["virtio", "sata", "scsi"], "virtio");
  const memory = h("input", { type: "number", value: "1024", min: "16" });
  const cpus = h("input", { type: "number", value: "1", min: "1" });
  const net = h("select");
  const kernel = h("input", { autocomplete: "off" });
  const initrd = h("input", { autocomplete: "off" });
  const args = h("input", { autocomplete: "off" });
  const uefi = h("input", { type: "checkbox" });
  const virt = select([["kvm", "KVM"], ["qemu", "QEMU (emulation, no KVM)"]], "kvm");
  const customize = h("input", { type: "checkbox" });
  const preview = h("pre", { class: "xml", "aria-label": "Generated XML", tabIndex: 0 });
  const status = h("p", { role: "status" });
  const finish = h("button", { type: "button", class: "primary" }, "Finish");

  const importBox = h("fieldset", null, h("legend", null, "Existing disk image"), field("Disk pool", diskPool), field("Disk volume", diskVol));
  const isoBox = h("fieldset", null, h("legend", null, "Install media"), field("ISO pool", isoPool), field("ISO volume", isoVol),
    field("New disk size (GiB)", newSize, "a qcow2 volume in the disk pool"));
  const adv = h("details", null, h("summary", null, "Advanced options"),
    field("Kernel path", kernel, "direct kernel boot (virt-install --boot kernel=...)"), field("Initrd path", initrd), field("Kernel args", args),
    field("Virtualization type", virt), h("label", { class: "check" }, uefi, " UEFI firmware"));

  root.append(h("h1", null, "New VM"), h("form", { class: "wizard", "aria-label": "New VM", onsubmit: (e: Event) => e.preventDefault() },
    field("Name", name), methods, importBox, isoBox, field("Disk bus", bus),
    field("Memory (MiB)", memory), field("CPUs", cpus), field("Network selection", net), adv,
    h("label", { class: "check" }, customize, " Customize configuration before install"),
    h("h2", null, "The definition"), preview, status, h("div", { class: "applybar" }, finish)));

  let vols: Record<string, Volume[]> = {};
  async function volumes(pool: string): Promise<Volume[]> {
    if (!pool) return [];
    vols[pool] ??= await get<Volume[]>(`pools/${enc(pool)}/volumes`);
    return vols[pool]!;
  }
  async function fillVols(poolSel: HTMLSelectElement, volSel: HTMLSelectElement, iso: boolean): Promise<void> {
    const list = (await volumes(poolSel.value)).filter((v) => (iso ? v.name.toLowerCase().endsWith(".iso") : !v.name.toLowerCase().endsWith(".iso")));
    const keep = volSel.value;
    volSel.replaceChildren(...list.map((v) => h("option", { value: v.name }, v.name)));
    if (list.some((v) => v.name === keep)) volSel.value = keep;
    update();
  }

  function sync(): void {
    importBox.hidden = method() !== "import";
    isoBox.hidden = method() !== "iso";
    update();
  }

  function volOf(poolSel: HTMLSelectElement, volSel: HTMLSelectElement): Volume | undefined {
    return (vols[poolSel.value] ?? []).find((v) => v.name === volSel.value);
  }

  function disk(path: string, format: string, target: string, block = false): string {
    const t = block ? "block" : "file";
    return `    <disk type='${t}' device='disk'>\n      <driver name='qemu' type='${esc(format || "raw")}'/>\n` +
      `      <source ${block ? "dev" : "file"}='${esc(path)}'/>\n      <target dev='${target}' bus='${bus.value}'/>\n    </disk>\n`;
  }

  function xml(newDiskPath?: string): string {
    const n = name.value.trim();
    const prefix = bus.value === "virtio" ? "vd" : "sd";
    let devices = "";
    let boot = "";
    if (method() === "import") {
      const v = volOf(diskPool, diskVol);
      if (v) devices += disk(v.path, v.format, `${prefix}a`, v.type === "block");
      boot = "<boot dev='hd'/>";
    } else {
      devices += disk(newDiskPath ?? `(a new ${newSize.value} GiB volume in ${diskPool.value || "the pool"})`, "qcow2", `${prefix}a`);
      const iso = volOf(isoPool, isoVol);
      if (iso) devices += `    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      <source file='${esc(iso.path)}'/>\n      <target dev='sdb' bus='sata'/>\n      <readonly/>\n    </disk>\n`;
      boot = "<boot dev='cdrom'/><boot dev='hd'/>";
    }
    if (net.value === "user") devices += "    <interface type='user'><model type='virtio'/></interface>\n";
    else if (net.value) devices += `    <interface type='network'><source network='${esc(net.value)}'/><model type='virtio'/></interface>\n`;
    devices += "    <serial type='pty'><target port='0'/></serial>\n    <console type='pty'/>\n" +
      "    <graphics type='vnc'/>\n    <video><model type='virtio'/></video>\n    <input type='tablet' bus='usb'/>\n";
    const k = kernel.value.trim();
    const os = `    <type arch='x86_64' machine='q35'>hvm</type>\n` +
      (uefi.checked ? "    <loader type='pflash' readonly='yes'/>\n" : "") +
      (k ? `    <kernel>${esc(k)}</kernel>\n` + (initrd.value.trim() ? `    <initrd>${esc(initrd.value.trim())}</initrd>\n` : "") +
        (args.value.trim() ? `    <cmdline>${esc(args.value.trim())}</cmdline>\n` : "") : `    ${boot}\n`);
    return `<domain type='${virt.value}'>\n  <name>${esc(n)}</name>\n  <memory unit='MiB'>${Number(memory.value) || 1024}</memory>\n` +
      `  <vcpu>${Number(cpus.value) || 1}</vcpu>\n  <os>\n${os}  </os>\n  <features><acpi/><apic/></features>\n` +
      (virt.value === "kvm" ? "  <cpu mode='host-passthrough'/>\n" : "") + `  <devices>\n${devices}  </devices>\n</domain>\n`;
  }

  function update(): void {
    preview.textContent = xml();
  }

  for (const el of [name, newSize, memory, cpus, kernel, initrd, args]) el.addEventListener("input", update);
  for (const el of [bus, net, uefi, virt, diskVol, isoVol]) el.addEventListener("change", update);
  diskPool.addEventListener("change", () => void fillVols(diskPool, diskVol, false));
  isoPool.addEventListener("change", () => void fillVols(isoPool, isoVol, true));

  finish.addEventListener("click", () => void (async () => {
    const n = name.value.trim();
    if (!n) {
      status.textContent = "Give the VM a name.";
      return;
    }
    finish.disabled = true;
    try {
      let text = xml();
      if (method() === "iso") {
        const v = await post<Volume>(`pools/${enc(diskPool.value)}/volumes`,
          { name: `${n}.qcow2`, capacity: Math.round(Number(newSize.value) * 1024 ** 3), format: "qcow2" });
        text = xml(v.path);
      } else if (!volOf(diskPool, diskVol)) {
        throw new ApiError("choose the disk image to import", "invalid_config", "pick a pool and a volume", 400);
      }
      const res = await json<{ warnings?: string[] }>("POST", "domains", { xml: text });
      for (const w of res?.warnings ?? []) notify(w);
      if (!customize.checked) await post(`domains/${enc(n)}/start`, {});
      notify(customize.checked ? `${n} defined: customize it, then Run` : `${n} created and started`);
      window.location.hash = `#/vm/${enc(n)}`;
    } catch (err) {
      const e = err as ApiError;
      status.textContent = e.hint ? `${e.message} (${e.hint})` : e.message;
      status.setAttribute("role", "alert");
      finish.disabled = false;
    }
  })());

  void (async () => {
    const [pools, nets] = await Promise.all([get<Pool[]>("pools?all=true"), get<Network[]>("networks")]);
    const active = pools.filter((p) => p.state === "running").map((p) => p.name);
    for (const sel of [diskPool, isoPool]) sel.replaceChildren(...active.map((p) => h("option", { value: p }, p)));
    net.replaceChildren(...nets.map((n) => h("option", { value: n.name }, `Virtual network '${n.name}'${n.active ? "" : " (inactive)"}`)),
      h("option", { value: "user" }, "Usermode networking"), h("option", { value: "" }, "None"));
    net.value = nets.find((n) => n.active)?.name ?? "user";
    vols = {};
    await Promise.all([fillVols(diskPool, diskVol, false), fillVols(isoPool, isoVol, true)]);
    sync();
  })().catch((err: ApiError) => notify(err.message, "error", err.hint));
  sync();
}
