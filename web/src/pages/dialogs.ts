// Modal dialogs: Clone, Delete and Migrate (virt-manager's), and the helper the others use.
import { ApiError, del, enc, get, post, request } from "../api";
import { notify } from "../app";
import { field, h, uid } from "../dom";
import { child, children } from "./xmlutil";

export interface Modal {
  dialog: HTMLDialogElement;
  body: HTMLElement;
  status: HTMLElement;
  close: () => void;
}

/** A modal <dialog> named `title` with `buttons` (the last one is the default). `onCancel`
 * (Cancel or Escape) may keep the dialog open by returning false. */
export function modal(title: string, buttons: HTMLButtonElement[], onCancel?: () => boolean): Modal {
  const id = uid("dlg");
  const body = h("div", { class: "dlgbody" });
  const status = h("p", { class: "dlgstatus", role: "status" });
  const cancel = h("button", { type: "button", onclick: () => { if (!onCancel || onCancel()) close(); } }, "Cancel");
  const dialog = h("dialog", { "aria-labelledby": id },
    h("h2", { id }, title), body, status, h("div", { class: "dlgbtns" }, cancel, ...buttons));
  const close = (): void => {
    dialog.close();
    dialog.remove();
  };
  dialog.addEventListener("cancel", (ev) => {
    if (onCancel && !onCancel()) ev.preventDefault();
    else dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, body, status, close };
}

export function fail(m: Modal, err: unknown): void {
  const e = err as ApiError;
  m.status.textContent = e.hint ? `${e.message} (${e.hint})` : e.message;
  m.status.setAttribute("role", "alert");
}

interface Job {
  id: string;
  state: string;
  progress: { done: number; total: number; unit: string };
  error: { error: string; hint: string | null } | null;
  result: unknown;
}

/** Follow a job until it ends; `onProgress` sees each state. */
export async function followJob(job: Job, onProgress: (j: Job) => void): Promise<Job> {
  let j = job;
  onProgress(j);
  while (j.state === "running") {
    j = await get<Job>(`jobs/${enc(j.id)}?wait=2`);
    onProgress(j);
  }
  if (j.state === "failed" && j.error) throw new ApiError(j.error.error, "failed", j.error.hint, 500);
  return j;
}

export function jobText(j: Job): string {
  const p = j.progress;
  const pct = p.total ? ` ${Math.floor((p.done / p.total) * 100)} %` : "";
  return `${j.state}${pct}`;
}

function disks(doc: XMLDocument): { dev: string; path: string }[] {
  const devs = child(doc.documentElement, "devices");
  return children(devs, "disk")
    .filter((d) => (d.getAttribute("device") ?? "disk") === "disk")
    .map((d) => ({
      dev: child(d, "target")?.getAttribute("dev") ?? "",
      path: child(d, "source")?.getAttribute("file") ?? child(d, "source")?.getAttribute("dev") ?? "",
    }))
    .filter((d) => d.path);
}

function renamedPath(path: string, oldName: string, newName: string): string {
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  const dot = base.indexOf(".");
  const ext = dot > 0 ? base.slice(dot) : "";
  const stem = dot > 0 ? base.slice(0, dot) : base;
  return dir + (stem.includes(oldName) ? stem.replace(oldName, newName) : `${newName}-${stem}`) + ext;
}

export function cloneDialog(name: string, state: string, doc: XMLDocument): void {
  const go = h("button", { type: "button", class: "primary" }, "Clone");
  const m = modal(`Clone virtual machine '${name}'`, [go]);
  const newName = h("input", { value: `${name}-clone`, autocomplete: "off" });
  const rows = disks(doc).map((d) => {
    const file = h("input", { value: renamedPath(d.path, name, `${name}-clone`).split("/").pop() ?? "", autocomplete: "off" });
    const dir = d.path.slice(0, d.path.lastIndexOf("/") + 1);
    return { d, dir, file, el: field(`New image name for ${d.dev}`, file, `in ${dir}, copied from ${d.path}`) };
  });
  newName.addEventListener("input", () => {
    for (const r of rows) r.file.value = renamedPath(r.d.path, name, newName.value.trim() || `${name}-clone`).split("/").pop() ?? "";
  });
  m.body.append(field("Name", newName), ...rows.map((r) => r.el),
    ...(state !== "shut off" ? [h("p", { class: "hint" }, "The VM must be shut off (or paused) while its disks are copied.")] : []));
  go.addEventListener("click", () => void (async () => {
    go.disabled = true;
    try {
      const resp = await request("POST", `domains/${enc(name)}/clone`, {
        body: { name: newName.value.trim(), files: rows.map((r) => r.dir + r.file.value.trim()) },
      });
      const { job } = (await resp.json()) as { job: Job };
      await followJob(job, (j) => { m.status.textContent = `Cloning: ${jobText(j)}`; });
      notify(`Cloned ${name} as ${newName.value.trim()}`);
      m.close();
      window.location.hash = `#/vm/${enc(newName.value.trim())}`;
    } catch (err) {
      fail(m, err);
      go.disabled = false;
    }
  })());
}

export function deleteDialog(name: string, state: string, doc: XMLDocument): void {
  const go = h("button", { type: "button", class: "danger" }, "Delete");
  const m = modal(`Delete virtual machine '${name}'`, [go]);
  const all = h("input", { type: "checkbox", checked: true });
  const boxes = disks(doc).map((d) => ({ d, box: h("input", { type: "checkbox", checked: true }) }));
  m.body.append(
    h("p", null, `Are you sure you want to delete '${name}'?`),
    ...(boxes.length ? [h("label", { class: "check" }, all, " Delete associated storage files")] : []),
    ...boxes.map(({ d, box }) => h("label", { class: "check indent" }, box, ` ${d.path} (${d.dev})`)),
    ...(state !== "shut off" ? [h("p", { class: "hint" }, "The VM runs: it is forced off first.")] : []));
  all.addEventListener("change", () => { for (const b of boxes) { b.box.checked = all.checked; b.box.disabled = !all.checked; } });
  go.addEventListener("click", () => void (async () => {
    go.disabled = true;
    try {
      if (state !== "shut off") await post(`domains/${enc(name)}/destroy`, {}).catch(() => undefined);
      const chosen = all.checked ? boxes.filter((b) => b.box.checked).map((b) => b.d.dev) : [];
      // as virt-manager: deleting a VM deletes its UEFI variables file too
      const qs = [...chosen.map((dev) => `storage=${enc(dev)}`), "nvram=true"].join("&");
      const res = (await (await request("DELETE", `domains/${enc(name)}${qs ? `?${qs}` : ""}`)).json()) as { removed: string[] };
      notify(`Deleted ${name}${res.removed.length ? ` and ${res.removed.join(", ")}` : ""}`);
      m.close();
      window.location.hash = "#/";
    } catch (err) {
      fail(m, err);
      go.disabled = false;
    }
  })());
}

/** virt-manager's Migrate dialog: this host's daemon moves the VM to another pyvirtd
 * (POST domains/NAME/migrate, a job: its progress shown, Cancel aborts it and the VM runs on
 * here). The destination's token and CA go to this daemon for this migration only. */
export function migrateDialog(name: string, state: string): void {
  const go = h("button", { type: "button", class: "primary" }, "Migrate");
  let jobId = "";
  let ended = false;
  const m = modal(`Migrate the virtual machine '${name}'`, [go], () => {
    if (!jobId || ended) return true;
    m.status.textContent = "Cancelling the migration…";
    void del(`jobs/${enc(jobId)}`).catch((err) => fail(m, err));
    return false; // closed once the job has ended (the VM runs on here)
  });
  const uri = h("input", { autocomplete: "off", placeholder: "pyvirt+tls://HOST:16514/" });
  const token = h("input", { type: "password", autocomplete: "off" });
  const ca = h("textarea", { rows: 3, placeholder: "-----BEGIN CERTIFICATE-----" });
  const insecure = h("input", { type: "checkbox" });
  const live = h("input", { type: "checkbox", checked: state !== "paused" });
  const persistent = h("input", { type: "checkbox", checked: true });
  const undefine = h("input", { type: "checkbox", checked: true });
  const tunnelled = h("input", { type: "checkbox" });
  const bandwidth = h("input", { type: "number", min: "1", step: "1" });
  const bar = h("progress", { max: 100, value: 0, "aria-label": "Migration progress", hidden: true });
  const check = (box: HTMLInputElement, text: string): HTMLElement => h("label", { class: "check" }, box, ` ${text}`);
  m.body.append(
    field("Destination URI", uri, "the other host's pyvirtd"),
    field("Destination API token", token, "a token of the other host (pyvirt token-create); used for this migration only"),
    field("Destination CA certificate", ca, "PEM; empty: this host's trust settings"),
    check(insecure, "Do not verify the destination's certificate"),
    check(live, "Live migration (the VM keeps running while its memory is copied)"),
    check(persistent, "Define the VM on the destination (persistent)"),
    check(undefine, "Undefine the VM on this host"),
    check(tunnelled, "Tunnelled (the stream goes through the destination daemon's TLS channel; no port opened for QEMU)"),
    field("Bandwidth (MiB/s)", bandwidth, "empty: QEMU's current limit"),
    bar);
  go.addEventListener("click", () => void (async () => {
    go.disabled = true;
    ended = false;
    try {
      const mib = Number(bandwidth.value);
      const body = {
        dest_uri: uri.value.trim(), token: token.value || null, ca: ca.value.trim() || null,
        insecure: insecure.checked, live: live.checked, persistent: persistent.checked,
        undefinesource: undefine.checked, tunnelled: tunnelled.checked, policy: mib > 0 ? { bandwidth: Math.round(mib * 1024 * 1024) } : null,
      };
      const resp = await request("POST", `domains/${enc(name)}/migrate`, { body });
      const { job } = (await resp.json()) as { job: Job };
      jobId = job.id;
      bar.hidden = false;
      const j = await followJob(job, (x) => {
        const p = x.progress;
        bar.value = p.total ? Math.floor((100 * p.done) / p.total) : 0;
        m.status.textContent = `Migrating: ${jobText(x)}`;
      });
      ended = true;
      if (j.state === "cancelled") {
        m.status.textContent = `Migration cancelled: ${name} runs on here`;
        m.status.setAttribute("role", "alert");
        bar.hidden = true;
        jobId = "";
        go.disabled = false;
        return;
      }
      notify(`Migrated ${name} to ${body.dest_uri}`);
      m.close();
      window.location.hash = "#/";
    } catch (err) {
      ended = true;
      jobId = "";
      bar.hidden = true;
      fail(m, err);
      go.disabled = false;
    }
  })());
}
