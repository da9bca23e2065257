// Small helpers over a domain definition parsed with DOMParser (the pages edit the XML the
// REST API returns and PUT it back with If-Match: the daemon validates it, as virsh edit).

export function parseXml(text: string): XMLDocument {
  const doc = new DOMParser().parseFromString(text, "application/xml");
  const err = doc.querySelector("parsererror");
  if (err) throw new Error(`cannot parse the definition: ${err.textContent ?? ""}`);
  return doc;
}

export function serialize(doc: XMLDocument): string {
  return new XMLSerializer().serializeToString(doc);
}

/** The first child element of `parent` called `name`, created when `create`. */
export function child(parent: Element, name: string, create = false): Element | null {
  for (const el of Array.from(parent.children)) if (el.tagName === name) return el;
  if (!create) return null;
  const el = parent.ownerDocument.createElement(name);
  parent.append(el);
  return el;
}

export function children(parent: Element | null, name: string): Element[] {
  if (!parent) return [];
  return Array.from(parent.children).filter((el) => el.tagName === name);
}

export function text(parent: Element, name: string): string {
  return child(parent, name)?.textContent ?? "";
}

export function setText(parent: Element, name: string, value: string): void {
  if (value === "") {
    child(parent, name)?.remove();
    return;
  }
  child(parent, name, true)!.textContent = value;
}

/** Set or remove (empty value) an attribute. */
export function setAttr(el: Element, name: string, value: string): void {
  if (value === "") el.removeAttribute(name);
  else el.setAttribute(name, value);
}

/** A memory element's size in KiB (unit attribute honoured). */
export function kibOf(el: Element | null): number {
  if (!el) return 0;
  const n = Number(el.textContent ?? "0");
  const unit = (el.getAttribute("unit") ?? "KiB").toLowerCase();
  const mult: Record<string, number> = {
    b: 1 / 1024, bytes: 1 / 1024, k: 1, kib: 1, kb: 1000 / 1024, m: 1024, mib: 1024, mb: 1e6 / 1024,
    g: 1024 ** 2, gib: 1024 ** 2, gb: 1e9 / 1024, t: 1024 ** 3, tib: 1024 ** 3,
  };
  return Math.round(n * (mult[unit] ?? 1));
}

export function esc(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");
}
