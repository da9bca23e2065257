// The web console's entry point: the shell (navigation, log out, notices) and a hash router.
import { h, clear } from "./dom";
import { request } from "./api";
import { overview } from "./pages/overview";
import { details } from "./pages/details";
import { tasks } from "./pages/tasks";
import { storage } from "./pages/storage";
import { networks } from "./pages/networks";
import { newVm } from "./pages/newvm";
import { snapshots } from "./pages/snapshots";
import { cluster } from "./pages/cluster";

export type Page = (root: HTMLElement, params: string[]) => void | (() => void) | Promise<void | (() => void)>;

const routes: [RegExp, Page][] = [];

/** Register a page for the hash route `pattern` (e.g. /^\/vm\/([^/]+)$/). */
export function route(pattern: RegExp, page: Page): void {
  routes.push([pattern, page]);
}

let cleanup: (() => void) | void = undefined;
let main: HTMLElement;

async function render(): Promise<void> {
  const path = decodeURIComponent(window.location.hash.replace(/^#/, "")) || "/";
  if (cleanup) cleanup();
  cleanup = undefined;
  clear(main);
  for (const [pattern, page] of routes) {
    const m = pattern.exec(path);
    if (m) {
      cleanup = await page(main, m.slice(1));
      return;
    }
  }
  main.append(h("h1", null, "Not found"), h("p", null, h("a", { href: "#/" }, "Overview")));
}

/** A notice at the top of the page (errors keep their hint). */
export function notify(message: string, kind: "info" | "error" = "info", hint?: string | null): void {
  const box = document.getElementById("notices");
  if (!box) return;
  const note = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", null, message), hint ? h("small", null, ` (${hint})`) : null,
    h("button", { class: "link", "aria-label": "Dismiss", onclick: () => note.remove() }, "×"));
  box.append(note);
  if (kind === "info") setTimeout(() => note.remove(), 5000);
}

async function logout(): Promise<void> {
  await request("POST", "/logout").catch(() => undefined);
  window.location.assign("/login");
}

function shell(): HTMLElement {
  const nav = h("nav", { "aria-label": "Main" },
    h("a", { href: "#/" }, "Overview"),
    h("a", { href: "#/storage" }, "Storage"),
    h("a", { href: "#/networks" }, "Networks"),
    h("a", { href: "#/tasks" }, "Tasks"),
    h("a", { href: "#/cluster", id: "nav-cluster", hidden: true }, "Cluster"),
    h("span", { class: "spacer" }),
    h("span", { id: "whoami" }),
    h("button", { type: "button", onclick: () => void logout() }, "Log out"));
  main = h("main", { id: "main" });
  return h("div", { class: "shell" },
    h("header", null, h("a", { class: "brand", href: "#/" }, "pyvirt"), nav),
    h("div", { id: "notices", "aria-live": "polite" }),
    main);
}

route(/^\/$/, (root) => overview(root));
route(/^\/vm\/([^/]+)$/, (root, p) => details(root, p));
route(/^\/tasks$/, (root) => tasks(root));
route(/^\/storage$/, (root) => storage(root));
route(/^\/networks$/, (root) => networks(root));
route(/^\/new$/, (root) => newVm(root));
route(/^\/vm\/([^/]+)\/snapshots$/, (root, p) => snapshots(root, p));
route(/^\/cluster$/, (root) => cluster(root));

function start(): void {
  const app = document.getElementById("app")!;
  app.replaceChildren(shell());
  window.addEventListener("hashchange", () => void render());
  void request("GET", "/api/v1/session").then(async (r) => {
    const who = (await r.json()) as { identity: string; user: string | null; cluster?: boolean };
    document.getElementById("whoami")!.textContent = who.user ?? who.identity;
    // the Cluster page only on a cluster member
    document.getElementById("nav-cluster")!.hidden = !who.cluster;
  }).catch(() => undefined);
  void render();
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
