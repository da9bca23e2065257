// A tiny DOM builder: h("button", {onclick}, "Run") -> HTMLButtonElement. No framework: the
// console is a handful of pages and a table that renders only its visible rows.

type Child = Node | string | number | null | undefined | false;
type Props = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value as EventListener);
      } else if (key === "class") {
        el.className = String(value);
      } else if (key === "dataset") {
        Object.assign(el.dataset, value);
      } else if (key in el && key !== "list" && key !== "form") {
        (el as unknown as Record<string, unknown>)[key] = value;
      } else {
        el.setAttribute(key, value === true ? "" : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el: Element): void {
  el.replaceChildren();
}

let seq = 0;
/** A unique element id (for <label for=...>). */
export function uid(prefix = "f"): string {
  seq += 1;
  return `${prefix}-${seq}`;
}

/** A labelled form field: <label for=id>text</label> + the control. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  if (!control.id) control.id = uid();
  return h("div", { class: "field" }, h("label", { htmlFor: control.id }, label), control,
    hint ? h("small", null, hint) : null);
}
