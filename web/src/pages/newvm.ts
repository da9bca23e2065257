// The New VM wizard, virt-install's paths: import an existing disk image, local install media
// (an ISO volume or a path), a network install tree (URL: its kernel and initrd are fetched
// as a job), a cloud image with cloud-init. The OS variant comes from the osinfo table and
// sets its defaults. All logic is pyvirt.api's, behind /api/v1/install: the definition shown
// is the daemon's preview (what `pyvirt install --print-xml` prints); "Finish" starts the
// install job. With "Customize configuration before install" the VM is only defined; its
// details open with a "Begin Installation" bar.
import { ApiError, enc, get, json } from "../api";
import { notify } from "../app";
import { field, h, uid } from "../dom";
import { select } from "./details";
import { followJob, jobText } from "./dialogs";

interface Pool { name: string; state: string }
interface Volume { name: string; path: string; format: string; type: string }
interface Network { name: string; active: boolean }
interface Variant { name: string; description: string; disk_bus: string; nic_model: string; memory_mib: number; vcpus: number; firmware: string }
interface Job { id: string; state: string; progress: { done: number; total: number; unit: string }; error: { error: string; hint: string | null } | null; result: unknown }
interface Preview { name: string; xml: string; install_xml: string | null; warnings: string[] }

const isIso = (v: Volume): boolean => v.name.toLowerCase().endsWith(".iso");
const errText = (err: unknown): string => {
  const e = err as ApiError;
  return e.hint ? `${e.message} (${e.hint})` : e.message;
};

export function newVm(root: HTMLElement): () => void {
  const name = h("input", { autocomplete: "off", required: true });
  const methodName = uid("method");
  const radio = (value: string, label: string, checked = false): HTMLElement => {
    const r = h("input", { type: "radio", name: methodName, value, checked });
    r.addEventListener("change", () => sync());
    return h("label", { class: "check" }, r, ` ${label}`);
  };
  const methods = h("fieldset", null, h("legend", null, "How would you like to install the operating system?"),
    radio("import", "Import existing disk image", true), radio("cdrom", "Local install media (ISO image or CDROM)"),
    radio("location", "Network install (HTTP, HTTPS or FTP)"), radio("cloud", "Cloud image with cloud-init"));
  const method = (): string => (methods.querySelector<HTMLInputElement>("input:checked")?.value ?? "import");

  const diskPool = h("select");
  const diskVol = h("select");
  const isoPool = h("select");
  const isoVol = h("select");
  const isoPath = h("input", { autocomplete: "off", placeholder: "/path/to/image.iso or /dev/sr0" });
  const url = h("input", { type: "url", autocomplete: "off", placeholder: "http://host/debian/…/netboot/" });
  const fetchBtn = h("button", { type: "button" }, "Fetch kernel and initrd");
  const fetchBar = h("progress", { max: 100, value: 0, "aria-label": "Fetch progress" });
  const fetchState = h("span", { role: "status", "aria-label": "Fetch status" });
  const extra = h("input", { autocomplete: "off" });
  const newSize = h("input", { type: "number", value: "8", min: "0", step: "any" });
  const os = h("select");
  const bus = select([["", "OS default"], "virtio", "sata", "scsi", "ide"], "");
  const nicModel = select([["", "OS default"], "virtio", "e1000e", "e1000", "rtl8139"], "");
  const memory = h("input", { type: "number", value: "1024", min: "16" });
  const cpus = h("input", { type: "number", value: "1", min: "1" });
  const net = h("select");
  const ciUser = h("input", { autocomplete: "off", value: "root" });
  const ciPass = h("input", { type: "password", autocomplete: "new-password" });
  const ciKey = h("textarea", { rows: 2, placeholder: "ssh-ed25519 AAAA… user@host" });
  const kernel = h("input", { autocomplete: "off" });
  const initrd = h("input", { autocomplete: "off" });
  const args = h("input", { autocomplete: "off" });
  const uefi = h("input", { type: "checkbox" });
  const virt = select([["", "Host default"], ["kvm", "KVM"], ["qemu", "QEMU (emulation, no KVM)"]], "");
  const customize = h("input", { type: "checkbox" });
  const preview = h("pre", { class: "xml", "aria-label": "Generated XML", tabIndex: 0 });
  const warnings = h("ul", { "aria-label": "Warnings" });
  const status = h("p", { role: "status" });
  const progress = h("progress", { max: 100, "aria-label": "Install progress", hidden: true });
  const finish = h("button", { type: "button", class: "primary" }, "Finish");

  const fDiskVol = field("Disk volume", diskVol);
  const fSize = field("New disk size (GiB)", newSize, "a new qcow2 volume in the disk pool (0: no disk)");
  const diskBox = h("fieldset", null, h("legend", null, "Storage"), field("Disk pool", diskPool), fDiskVol, fSize, field("Disk bus", bus));
  const isoBox = h("fieldset", null, h("legend", null, "Install media"), field("ISO pool", isoPool), field("ISO volume", isoVol),
    field("ISO path", isoPath, "instead of a volume: a file or device on the host"));
  const urlBox = h("fieldset", null, h("legend", null, "Network install"), field("Install location (URL)", url),
    h("div", { class: "toolbar" }, fetchBtn, " ", fetchBar, " ", fetchState), field("Kernel options", extra));
  const cloudBox = h("fieldset", null, h("legend", null, "Cloud-init"), field("User name", ciUser, "root, or a user to create (sudo)"),
    field("User password", ciPass), field("SSH public key", ciKey));
  const adv = h("details", null, h("summary", null, "Advanced options"),
    field("Kernel path", kernel, "direct kernel boot (virt-install --boot kernel=...)"), field("Initrd path", initrd), field("Kernel args", args),
    field("Virtualization type", virt), h("label", { class: "check" }, uefi, " UEFI firmware"));

  root.append(h("h1", null, "New VM"), h("form", { class: "wizard", "aria-label": "New VM", onsubmit: (e: Event) => e.preventDefault() },
    field("Name", name), methods, isoBox, urlBox, diskBox, cloudBox,
    h("fieldset", null, h("legend", null, "Operating system, memory and CPUs"), field("Operating system", os, "sets memory, vCPUs, disk bus and NIC model"),
      field("Memory (MiB)", memory), field("CPUs", cpus)),
    h("fieldset", null, h("legend", null, "Network"), field("Network selection", net), field("NIC model", nicModel)),
    adv, h("label", { class: "check" }, customize, " Customize configuration before install"),
    h("h2", null, "The definition"), preview, warnings, status, progress, h("div", { class: "applybar" }, finish)));

  let variants: Variant[] = [];
  const vols: Record<string, Promise<Volume[]>> = {};
  let fetched = "";
  let alive = true;

  async function volumes(pool: string): Promise<Volume[]> {
    if (!pool) return [];
    vols[pool] ??= get<Volume[]>(`pools/${enc(pool)}/volumes`);
    return vols[pool];
  }
  async function fillVols(poolSel: HTMLSelectElement, volSel: HTMLSelectElement, iso: boolean): Promise<void> {
    const list = (await volumes(poolSel.value)).filter((v) => isIso(v) === iso);
    const keep = volSel.value;
    volSel.replaceChildren(...(iso ? [h("option", { value: "" }, "(none: use the path)")] : []),
      ...list.map((v) => h("option", { value: v.name }, v.name)));
    if (list.some((v) => v.name === keep)) volSel.value = keep;
    else if (iso && list[0]) volSel.value = list[0].name;
    update();
  }

  function sync(): void {
    const m = method();
    isoBox.hidden = m !== "cdrom";
    urlBox.hidden = m !== "location";
    cloudBox.hidden = m !== "cloud";
    fDiskVol.hidden = !(m === "import" || m === "cloud");
    fSize.hidden = !fDiskVol.hidden;
    update();
  }

  const num = (el: HTMLInputElement): number | null => (el.value.trim() === "" ? null : Number(el.value));
  const str = (el: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement): string | null => el.value.trim() || null;

  function choices(): Record<string, unknown> {
    const m = method();
    const c: Record<string, unknown> = {
      name: name.value.trim(), method: m, disk_pool: str(diskPool), disk_bus: str(bus), os_variant: str(os),
      memory_mib: num(memory), vcpus: num(cpus), network: net.value || "none", nic_model: str(nicModel),
      uefi: uefi.checked, virt_type: str(virt),
    };
    if (m === "import" || m === "cloud") c.disk_vol = str(diskVol);
    else c.disk_size_gb = num(newSize) ?? 0;
    if (m === "cdrom") {
      if (isoVol.value) Object.assign(c, { media_pool: str(isoPool), media_vol: isoVol.value });
      else c.media_path = str(isoPath);
    }
    if (m === "location") Object.assign(c, { location: str(url), extra_args: str(extra) });
    if (m === "cloud") Object.assign(c, { cloud_user: str(ciUser), cloud_password: ciPass.value || null, cloud_ssh_keys: ciKey.value.split("\n").filter((k) => k.trim()) });
    if (m === "import" && kernel.value.trim()) Object.assign(c, { kernel: str(kernel), initrd: str(initrd), kernel_args: str(args) });
    return c;
  }

  let timer = 0;
  let seq = 0;
  function update(): void {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void refreshPreview(), 250);
  }
  async function refreshPreview(): Promise<void> {
    const mine = ++seq;
    const c = choices();
    if (!c.name) {
      preview.textContent = "";
      status.textContent = "Give the VM a name.";
      return;
    }
    if (c.method === "location" && c.location && fetched !== c.location) {
      preview.textContent = "";
      status.textContent = "Fetch the installer's kernel and initrd to see the definition.";
      return;
    }
    try {
      const p = await json<Preview>("POST", "install/preview", { body: c });
      if (mine !== seq || !alive) return;
      preview.textContent = p.install_xml && p.install_xml !== p.xml ? `${p.xml}\n<!-- the install phase boots: -->\n${p.install_xml}` : p.xml;
      warnings.replaceChildren(...p.warnings.map((w) => h("li", null, w)));
      status.textContent = "";
      status.setAttribute("role", "status");
    } catch (err) {
      if (mine !== seq || !alive) return;
      preview.textContent = "";
      warnings.replaceChildren();
      status.textContent = errText(err);
    }
  }

  function applyVariant(): void {
    const v = variants.find((x) => x.name === os.value);
    if (!v) return;
    memory.value = String(v.memory_mib);
    cpus.value = String(v.vcpus);
    bus.value = v.disk_bus;
    nicModel.value = v.nic_model;
    uefi.checked = v.firmware === "efi";
    update();
  }

  fetchBtn.addEventListener("click", () => void (async () => {
    const location = url.value.trim();
    if (!location) return;
    fetchBtn.disabled = true;
    fetchState.textContent = "fetching";
    try {
      const start = await json<{ job: Job }>("POST", "install/fetch", { body: { location } });
      await followJob(start.job, (j) => {
        fetchBar.value = j.progress.total ? (100 * j.progress.done) / j.progress.total : 0;
        fetchState.textContent = jobText(j);
      });
      fetched = location;
      fetchBar.value = 100;
      fetchState.textContent = "fetched";
      update();
    } catch (err) {
      fetchState.textContent = errText(err);
    } finally {
      fetchBtn.disabled = false;
    }
  })());

  for (const el of [name, newSize, memory, cpus, kernel, initrd, args, isoPath, extra, ciUser, ciPass, ciKey, url]) el.addEventListener("input", update);
  for (const el of [bus, net, nicModel, uefi, virt, diskVol, isoVol]) el.addEventListener("change", update);
  os.addEventListener("change", applyVariant);
  diskPool.addEventListener("change", () => void fillVols(diskPool, diskVol, false));
  isoPool.addEventListener("change", () => void fillVols(isoPool, isoVol, true));

  finish.addEventListener("click", () => void (async () => {
    const c = choices();
    if (!c.name) {
      status.textContent = "Give the VM a name.";
      return;
    }
    const n = String(c.name);
    finish.disabled = true;
    progress.hidden = false;
    progress.removeAttribute("value");
    status.setAttribute("role", "status");
    status.textContent = "Starting the install…";
    try {
      const start = await json<{ job: Job }>("POST", "install", { body: { ...c, customize: customize.checked } });
      // the job runs as long as an installer does: go to the VM once it is defined
      let j = start.job;
      while (j.state === "running" && !(await defined(n))) {
        status.textContent = `Installing: ${jobText(j)}`;
        if (j.progress.total) progress.value = (100 * j.progress.done) / j.progress.total;
        j = await get<Job>(`jobs/${enc(j.id)}?wait=1`);
      }
      if (j.state === "failed" && j.error) throw new ApiError(j.error.error, "failed", j.error.hint, 500);
      if (j.state === "cancelled") throw new ApiError("the install was cancelled", "cancelled", null, 409);
      if (customize.checked) {
        if (j.state === "running") await followJob(j, () => undefined);
        notify(`${n} defined: customize it, then Begin Installation`);
        customizeBar(n);
      } else {
        notify(`${n} created; the install runs (Tasks shows it)`);
      }
      window.location.hash = `#/vm/${enc(n)}`;
    } catch (err) {
      status.textContent = errText(err);
      status.setAttribute("role", "alert");
      finish.disabled = false;
      progress.hidden = true;
    }
  })());

  void (async () => {
    const [pools, nets, vs] = await Promise.all([get<Pool[]>("pools?all=true"), get<Network[]>("networks"), get<Variant[]>("install/os-variants")]);
    variants = vs;
    os.replaceChildren(h("option", { value: "" }, "Detect from the media (or generic)"),
      ...vs.map((v) => h("option", { value: v.name }, `${v.description} (${v.name})`)));
    const active = pools.filter((p) => p.state === "running").map((p) => p.name);
    for (const sel of [diskPool, isoPool]) sel.replaceChildren(...active.map((p) => h("option", { value: p }, p)));
    net.replaceChildren(...nets.map((n) => h("option", { value: n.name }, `Virtual network '${n.name}'${n.active ? "" : " (inactive)"}`)),
      h("option", { value: "user" }, "Usermode networking"), h("option", { value: "" }, "None"));
    net.value = nets.find((n) => n.active)?.name ?? "user";
    await Promise.all([fillVols(diskPool, diskVol, false), fillVols(isoPool, isoVol, true)]);
    sync();
  })().catch((err: ApiError) => notify(err.message, "error", err.hint));
  sync();
  return () => {
    alive = false;
    window.clearTimeout(timer);
  };
}

async function defined(name: string): Promise<boolean> {
  try {
    await get(`domains/${enc(name)}/state`);
    return true;
  } catch {
    return false;
  }
}

/** The "Begin Installation" bar over the details pages of a VM defined for customizing. */
export function customizeBar(name: string): void {
  document.getElementById("customize-bar")?.remove();
  const state = h("span", { role: "status" });
  const begin = h("button", { type: "button", class: "primary" }, "Begin Installation");
  const bar = h("aside", { id: "customize-bar", class: "customize", "aria-label": "Customize before install",
    style: "position:fixed;bottom:0;left:0;right:0;padding:.6em 1em;background:#fff6cc;border-top:1px solid #d9c36a;z-index:20" },
    h("span", null, `${name} is defined but not installed: change its configuration, then `), begin, " ", state);
  const here = (): boolean => window.location.hash.startsWith(`#/vm/${enc(name)}`);
  const onHash = (): void => {
    if (!here()) {
      bar.remove();
      window.removeEventListener("hashchange", onHash);
    }
  };
  begin.addEventListener("click", () => void (async () => {
    begin.disabled = true;
    try {
      const start = await json<{ job: Job }>("POST", `install/${enc(name)}/begin`, { body: {} });
      state.textContent = jobText(start.job);
      notify(`${name}: installation begun`);
      bar.remove();
      window.removeEventListener("hashchange", onHash);
    } catch (err) {
      state.textContent = errText(err);
      begin.disabled = false;
    }
  })());
  window.addEventListener("hashchange", onHash);
  document.body.append(bar);
}
