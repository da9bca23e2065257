// Networks: the virtual networks (start, stop, autostart, DHCP leases) and a form creating a
// NAT, routed or isolated network with a DHCP range, as XML sent to POST /api/v1/networks.
import { ApiError, del, enc, get, json, post, put } from "../api";
import { notify } from "../app";
import { field, h } from "../dom";
import { subscribe } from "../events";
import { select } from "./details";
import { fail, modal } from "./dialogs";
import { esc } from "./xmlutil";

interface Network { name: string; active: boolean; autostart: boolean; bridge: string | null; forward_mode: string; persistent: boolean }
interface Lease { mac: string; ip: string; prefix: number; hostname: string; expiry: number }

const report = (err: unknown): void => {
  const e = err as ApiError;
  notify(e.message, "error", e.hint);
};

function addNetwork(done: () => void): void {
  const go = h("button", { type: "button", class: "primary" }, "Finish");
  const m = modal("Create a new virtual network", [go]);
  const name = h("input", { autocomplete: "off" });
  const mode = select([["nat", "NAT"], ["route", "Routed"], ["isolated", "Isolated"], ["bridge", "Bridge (an existing host bridge)"]], "nat");
  const addr = h("input", { value: "192.168.100.1/24", autocomplete: "off" });
  const start = h("input", { value: "192.168.100.128", autocomplete: "off" });
  const end = h("input", { value: "192.168.100.254", autocomplete: "off" });
  const bridge = h("input", { autocomplete: "off" });
  const fBridge = field("Host bridge", bridge);
  const fIp = h("div", null, field("IPv4 network (address/prefix)", addr), field("DHCP start", start), field("DHCP end", end));
  const sync = (): void => { fBridge.hidden = mode.value !== "bridge"; fIp.hidden = mode.value === "bridge"; };
  mode.addEventListener("change", sync);
  sync();
  m.body.append(field("Name", name), field("Mode", mode), fBridge, fIp);
  go.addEventListener("click", () => void (async () => {
    go.disabled = true;
    try {
      const n = name.value.trim();
      let xml: string;
      if (mode.value === "bridge") {
        xml = `<network><name>${esc(n)}</name><forward mode='bridge'/><bridge name='${esc(bridge.value.trim())}'/></network>`;
      } else {
        const [ip, prefix] = addr.value.trim().split("/");
        const fwd = mode.value === "isolated" ? "" : `<forward mode='${mode.value}'/>`;
        const dhcp = start.value.trim() ? `<dhcp><range start='${esc(start.value.trim())}' end='${esc(end.value.trim())}'/></dhcp>` : "";
        xml = `<network><name>${esc(n)}</name>${fwd}<ip address='${esc(ip ?? "")}' prefix='${esc(prefix ?? "24")}'>${dhcp}</ip></network>`;
      }
      await json("POST", "networks", { xml });
      notify(`Network ${n} defined`);
      m.close();
      done();
    } catch (err) {
      fail(m, err);
      go.disabled = false;
    }
  })());
}

export function networks(root: HTMLElement): () => void {
  const body = h("tbody");
  const leases = h("tbody");
  const leaseTitle = h("h2", null, "DHCP leases");
  root.append(h("h1", null, "Networks"),
    h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => addNetwork(() => void refresh()) }, "Add Network")),
    h("table", { class: "grid", "aria-label": "Virtual networks" },
      h("thead", null, h("tr", null, ...["Name", "Mode", "Bridge", "State", "Autostart", ""].map((t) => h("th", null, t)))), body),
    leaseTitle,
    h("table", { class: "grid", "aria-label": "DHCP leases" },
      h("thead", null, h("tr", null, ...["MAC", "Address", "Host name", "Expires"].map((t) => h("th", null, t)))), leases));

  async function showLeases(n: Network): Promise<void> {
    leaseTitle.textContent = `DHCP leases of ${n.name}`;
    const list = n.active ? await get<Lease[]>(`networks/${enc(n.name)}/leases`) : [];
    leases.replaceChildren(...list.map((l) => h("tr", null, h("td", null, l.mac), h("td", null, `${l.ip}/${l.prefix}`),
      h("td", null, l.hostname), h("td", null, l.expiry ? new Date(l.expiry * 1000).toLocaleString() : ""))));
  }

  const row = (n: Network): HTMLElement => {
    const auto = h("input", { type: "checkbox", checked: n.autostart, "aria-label": `Autostart ${n.name}`,
      onchange: () => void put(`networks/${enc(n.name)}/autostart`, { enabled: auto.checked }).catch(report) });
    const act = (label: string, fn: () => Promise<unknown>): HTMLButtonElement =>
      h("button", { type: "button", onclick: () => void fn().then(() => refresh()).catch(report) }, label);
    return h("tr", null,
      h("td", null, h("button", { type: "button", class: "link", onclick: () => void showLeases(n).catch(report) }, n.name)),
      h("td", null, n.forward_mode || "isolated"), h("td", null, n.bridge ?? ""),
      h("td", null, h("span", { class: `state ${n.active ? "running" : ""}` }, n.active ? "active" : "inactive")),
      h("td", null, auto),
      h("td", null, n.active ? act("Stop", () => post(`networks/${enc(n.name)}/destroy`)) : act("Start", () => post(`networks/${enc(n.name)}/start`)),
        " ", n.active ? null : act("Delete", () => del(`networks/${enc(n.name)}`))));
  };

  async function refresh(): Promise<void> {
    const list = await get<Network[]>("networks");
    body.replaceChildren(...list.map(row));
  }
  const unsubscribe = subscribe((ev) => { if (ev.kind === "network-lifecycle") void refresh().catch(() => undefined); });
  void refresh().catch(report);
  return unsubscribe;
}
