// Storage: the pools (start, stop, refresh, autostart, add a pool of any backend) and the
// selected pool's volumes (create, resize, delete, upload and download). The add-pool wizard
// sends its fields to the daemon, which makes the pool XML with pool-define-as's code (shown in
// the wizard before Finish: POST /api/v1/pools/preview); Finish defines exactly that XML.
// Uploads stream the chosen File with XMLHttpRequest (upload progress events) to
// PUT .../content (the vol-upload job); downloads are a link to GET .../content (the session
// cookie authenticates it; the browser shows the download's progress, Tasks the job's).
import { API, ApiError, csrfToken, del, enc, get, json, post, put } from "../api";
import { notify } from "../app";
import { field, h } from "../dom";
import { subscribe } from "../events";
import { bytes } from "../format";
import { select } from "./details";
import { fail, modal } from "./dialogs";

interface Pool { name: string; type: string; state: string; autostart: boolean; capacity: number; allocation: number; available: number; target: string | null }
interface Volume { name: string; path: string; format: string; capacity: number; allocation: number }

const report = (err: unknown): void => {
  const e = err as ApiError;
  notify(e.message, "error", e.hint);
};

/** The add-pool wizard's fields: pool-define-as's arguments (POST pools/preview, pools/define-as). */
type PoolSpec = Record<string, string>;

function addPool(done: () => void): void {
  const go = h("button", { type: "button", class: "primary" }, "Finish");
  const m = modal("Add a New Storage Pool", [go]);
  const input = (): HTMLInputElement => h("input", { autocomplete: "off" });
  const name = input();
  const type = select([["dir", "dir: Filesystem Directory"], ["fs", "fs: Pre-Formatted Block Device"], ["netfs", "netfs: Network Exported Directory"],
    ["logical", "logical: LVM Volume Group"], ["disk", "disk: Physical Disk Device"], ["iscsi", "iscsi: iSCSI Target"]], "dir");
  const target = input();
  const host = input();
  const device = input();
  const srcdir = input();
  const srcname = input();
  const format = input();
  const initiator = input();
  const build = h("input", { type: "checkbox" });
  const xml = h("pre", { class: "xml", "aria-label": "Pool XML", tabindex: "0" });
  const fHost = field("Host name", host, "HOST or HOST:PORT");
  const fDev = field("Source path", device, "a block device, or the iSCSI target's IQN");
  const fDir = field("Source directory", srcdir);
  const fName = field("Volume group name", srcname);
  const fFormat = field("Source format", format, "fs: ext4, xfs...; netfs: nfs; disk: gpt, dos (empty: the default)");
  const fInit = field("Initiator IQN", initiator, "empty: the host's own");
  const fTarget = field("Target path", target);
  const shown: [HTMLElement, string, HTMLInputElement, (t: string) => boolean][] = [
    [fTarget, "target", target, (t) => t !== "logical"],
    [fHost, "source_host", host, (t) => t === "netfs" || t === "iscsi"],
    [fDev, "source_dev", device, (t) => t === "fs" || t === "disk" || t === "iscsi" || t === "logical"],
    [fDir, "source_path", srcdir, (t) => t === "netfs"],
    [fName, "source_name", srcname, (t) => t === "logical"],
    [fFormat, "source_format", format, (t) => t === "fs" || t === "netfs" || t === "disk"],
    [fInit, "source_initiator", initiator, (t) => t === "iscsi"],
  ];
  const spec = (): PoolSpec => {
    const f: PoolSpec = { name: name.value.trim(), type: type.value };
    for (const [wrap, key, el] of shown) if (!wrap.hidden && el.value.trim()) f[key] = el.value.trim();
    return f;
  };
  // the XML comes from the daemon (pool-define-as's code and checks), shown before Finish
  let seq = 0;
  let timer = 0;
  let shownFor = ""; // the fields the XML shown was made from
  const preview = async (): Promise<void> => {
    const mine = ++seq;
    const f = spec();
    shownFor = "";
    if (!f.name) {
      xml.textContent = "";
      return;
    }
    try {
      const doc = await post<{ xml: string }>("pools/preview", f);
      if (mine !== seq) return;
      xml.textContent = doc.xml;
      shownFor = JSON.stringify(f);
      m.status.textContent = "";
      m.status.setAttribute("role", "status");
    } catch (err) {
      if (mine !== seq) return;
      xml.textContent = "";
      fail(m, err);
    }
  };
  const later = (): void => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void preview(), 200);
  };
  const sync = (): void => {
    for (const [wrap, , , when] of shown) wrap.hidden = !when(type.value);
    later();
  };
  type.addEventListener("change", sync);
  m.body.addEventListener("input", later);
  sync();
  m.body.append(field("Name", name), field("Type", type), ...shown.map(([wrap]) => wrap),
    h("label", { class: "check" }, build, " Build the pool (create the directory, format, make the VG)"),
    h("h3", null, "XML"), xml);
  go.addEventListener("click", () => void (async () => {
    go.disabled = true;
    try {
      window.clearTimeout(timer);
      const f = spec();
      if (JSON.stringify(f) !== shownFor) await preview();
      const shown = xml.textContent ?? "";
      if (!shown) throw new ApiError(m.status.textContent || "the pool needs a name", "invalid_config", null, 400);
      await json("POST", "pools", { xml: shown }); // exactly the XML shown (its UUID too)
      try {
        if (build.checked) await post(`pools/${enc(f.name!)}/build`);
        await post(`pools/${enc(f.name!)}/start`);
      } catch (err) {
        await del(`pools/${enc(f.name!)}`).catch(() => undefined); // Finish can be tried again
        throw err;
      }
      notify(`Pool ${f.name} added`);
      m.close();
      done();
    } catch (err) {
      fail(m, err);
      go.disabled = false;
    }
  })());
}

/** PUT `file` into the volume; `onProgress` hears (bytes sent, bytes total). */
export function uploadFile(pool: string, vol: string, file: Blob, onProgress: (done: number, total: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `${API}/pools/${enc(pool)}/volumes/${enc(vol)}/content`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener("load", () => {
      if (xhr.status < 300) {
        onProgress(file.size, file.size);
        resolve();
        return;
      }
      let doc: { error?: string; code?: string; hint?: string | null } = {};
      try {
        doc = JSON.parse(xhr.responseText) as typeof doc;
      } catch {
        /* not the API's error shape */
      }
      reject(new ApiError(doc.error ?? `upload: HTTP ${xhr.status}`, doc.code ?? "failed", doc.hint ?? null, xhr.status));
    });
    xhr.addEventListener("error", () => reject(new ApiError("the upload failed (connection lost)", "failed", null, 0)));
    xhr.send(file);
  });
}

export function storage(root: HTMLElement): () => void {
  let pools: Pool[] = [];
  let current = "";
  const poolBody = h("tbody");
  const volBody = h("tbody");
  const volTitle = h("h2", null, "Volumes");
  const volName = h("input", { autocomplete: "off" });
  const volSize = h("input", { type: "number", value: "1", min: "0.01", step: "any" });
  const volFmt = select(["qcow2", "raw"], "qcow2");
  const volFile = h("input", { type: "file" });
  const xfer = h("progress", { max: 100, value: 0, "aria-label": "Transfer progress", hidden: true });
  const xferText = h("span", { role: "status", "aria-label": "Transfer status" });
  const volForm = h("form", { class: "inline", "aria-label": "New volume" },
    field("Volume name", volName), field("Capacity (GiB)", volSize), field("Format", volFmt),
    field("Upload a file", volFile, "the volume gets the file's size and bytes"),
    h("button", { type: "submit" }, "Create Volume"));
  const sendFile = async (pool: string, vol: string, file: File): Promise<void> => {
    xfer.hidden = false;
    xfer.value = 0;
    const t0 = performance.now();
    await uploadFile(pool, vol, file, (done, total) => {
      xfer.value = total ? (100 * done) / total : 0;
      const secs = (performance.now() - t0) / 1000;
      xferText.textContent = `Uploading ${vol}: ${bytes(done)} of ${bytes(total)}${secs > 0.5 ? ` (${bytes(done / secs)}/s)` : ""}`;
    });
    xferText.textContent = `Uploaded ${vol}: ${bytes(file.size)}`;
  };
  volForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = volName.value.trim();
    const file = volFile.files?.[0];
    const pool = current;
    void (async () => {
      const capacity = file ? file.size : Math.round(Number(volSize.value) * 1024 ** 3);
      await post(`pools/${enc(pool)}/volumes`, { name, capacity, format: file ? "raw" : volFmt.value });
      if (file) await sendFile(pool, name, file);
      notify(`Volume ${name} created`);
      volName.value = "";
      volFile.value = "";
      await loadVolumes();
    })().catch(report);
  });
  root.append(h("h1", null, "Storage"),
    h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => addPool(() => void refresh()) }, "Add Pool")),
    h("table", { class: "grid", "aria-label": "Storage pools" },
      h("thead", null, h("tr", null, ...["Name", "Type", "State", "Size", "Autostart", ""].map((t) => h("th", null, t)))), poolBody),
    volTitle, volForm, h("div", { class: "toolbar" }, xfer, " ", xferText),
    h("table", { class: "grid", "aria-label": "Volumes" },
      h("thead", null, h("tr", null, ...["Name", "Format", "Capacity", "Allocation", "Path", ""].map((t) => h("th", null, t)))), volBody));

  // an inactive pool can be deleted (pool-undefine; its storage is left alone)
  const remove = (pool: string): HTMLButtonElement => h("button", { type: "button", "aria-label": `Delete pool ${pool}`, onclick: () => {
    if (!window.confirm(`Delete the pool ${pool}? Its volumes are left where they are.`)) return;
    void del(`pools/${enc(pool)}`).then(() => { notify(`Pool ${pool} deleted`); return refresh(); }).catch(report);
  } }, "Delete");
  const poolRow = (p: Pool): HTMLElement => {
    const up = p.state === "running";
    const auto = h("input", { type: "checkbox", checked: p.autostart, "aria-label": `Autostart ${p.name}`,
      onchange: () => void put(`pools/${enc(p.name)}/autostart`, { enabled: auto.checked }).catch(report) });
    const act = (label: string, path: string): HTMLButtonElement =>
      h("button", { type: "button", onclick: () => void post(`pools/${enc(p.name)}/${path}`).then(() => refresh()).catch(report) }, label);
    return h("tr", { "aria-selected": p.name === current ? "true" : "false" },
      h("td", null, h("button", { type: "button", class: "link", onclick: () => { current = p.name; void refresh(); } }, p.name)),
      h("td", null, p.type), h("td", null, h("span", { class: `state ${up ? "running" : ""}` }, p.state)),
      h("td", null, up ? `${bytes(p.allocation)} of ${bytes(p.capacity)}` : ""), h("td", null, auto),
      h("td", null, up ? act("Stop", "destroy") : act("Start", "start"), " ", up ? act("Refresh", "refresh") : remove(p.name)));
  };

  async function loadVolumes(): Promise<void> {
    const p = pools.find((x) => x.name === current);
    volTitle.textContent = p ? `Volumes of ${p.name}` : "Volumes";
    volForm.hidden = !p || p.state !== "running";
    if (!p || p.state !== "running") {
      volBody.replaceChildren();
      return;
    }
    const vols = await get<Volume[]>(`pools/${enc(p.name)}/volumes`);
    const base = `pools/${enc(p.name)}/volumes`;
    volBody.replaceChildren(...vols.map((v) => {
      const pick = h("input", { type: "file", hidden: true, "aria-label": `File for ${v.name}` });
      pick.addEventListener("change", () => {
        const file = pick.files?.[0];
        if (file) void sendFile(p.name, v.name, file).then(() => loadVolumes()).catch(report);
      });
      return h("tr", null,
        h("td", null, v.name), h("td", null, v.format), h("td", null, bytes(v.capacity)), h("td", null, bytes(v.allocation)),
        h("td", { class: "path" }, v.path),
        h("td", null,
          h("button", { type: "button", "aria-label": `Resize ${v.name}`, onclick: () => {
            const answer = window.prompt(`New capacity of ${v.name} in GiB (now ${(v.capacity / 1024 ** 3).toFixed(3)})`);
            if (!answer) return;
            void post(`${base}/${enc(v.name)}/resize`, { capacity: Math.round(Number(answer) * 1024 ** 3) })
              .then(() => { notify(`Volume ${v.name} resized`); return loadVolumes(); }).catch(report);
          } }, "Resize"), " ",
          h("button", { type: "button", "aria-label": `Upload to ${v.name}`, onclick: () => pick.click() }, "Upload"), pick, " ",
          h("a", { class: "button", href: `${API}/${base}/${enc(v.name)}/content`, download: v.name, "aria-label": `Download ${v.name}` }, "Download"), " ",
          h("button", { type: "button", "aria-label": `Delete ${v.name}`, onclick: () => {
            if (!window.confirm(`Delete the volume ${v.name}?`)) return;
            void del(`${base}/${enc(v.name)}`).then(() => loadVolumes()).catch(report);
          } }, "Delete")));
    }));
  }

  async function refresh(): Promise<void> {
    pools = await get<Pool[]>("pools?all=true");
    if (!pools.some((p) => p.name === current)) current = pools.find((p) => p.state === "running")?.name ?? pools[0]?.name ?? "";
    poolBody.replaceChildren(...pools.map(poolRow));
    await loadVolumes();
  }
  const unsubscribe = subscribe((ev) => { if (ev.kind === "pool-lifecycle") void refresh().catch(() => undefined); });
  void refresh().catch(report);
  return unsubscribe;
}
