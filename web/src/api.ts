// The REST API client of the web console: same origin, the session cookie, and the CSRF
// token (the pyvirt_csrf cookie's value) in X-CSRF-Token on every state-changing request.

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly hint: string | null,
    readonly status: number,
  ) {
    super(message);
  }
}

export const API = "/api/v1";

export function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === "pyvirt_csrf") return decodeURIComponent(rest.join("="));
  }
  return "";
}

export interface RequestOptions {
  body?: unknown;
  xml?: string;
  headers?: Record<string, string>;
}

export async function request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body: BodyInit | undefined;
  if (opts.xml !== undefined) {
    headers["Content-Type"] = "application/xml";
    body = opts.xml;
  } else if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  const resp = await fetch(path.startsWith("/") ? path : `${API}/${path}`, {
    method,
    headers,
    body,
    credentials: "same-origin",
  });
  if (resp.status === 401) {
    window.location.assign("/login");
    throw new ApiError("not logged in", "unauthorized", null, 401);
  }
  if (!resp.ok) {
    let message = `${method} ${path}: HTTP ${resp.status}`;
    let code = "failed";
    let hint: string | null = null;
    try {
      const doc = (await resp.json()) as { error?: string; code?: string; hint?: string | null };
      message = doc.error ?? message;
      code = doc.code ?? code;
      hint = doc.hint ?? null;
    } catch {
      /* not the API's error shape */
    }
    throw new ApiError(message, code, hint, resp.status);
  }
  return resp;
}

export async function json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const resp = await request(method, path, opts);
  if (resp.status === 204) return undefined as T;
  const type = resp.headers.get("content-type") ?? "";
  return (type.includes("json") ? await resp.json() : await resp.text()) as T;
}

export const get = <T>(path: string): Promise<T> => json<T>("GET", path);
export const post = <T>(path: string, body?: unknown): Promise<T> => json<T>("POST", path, { body: body ?? {} });
export const put = <T>(path: string, body?: unknown): Promise<T> => json<T>("PUT", path, { body });
export const del = <T>(path: string): Promise<T> => json<T>("DELETE", path);

export const enc = encodeURIComponent;
