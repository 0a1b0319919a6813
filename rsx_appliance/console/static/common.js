// Shared by the console's pages (specs/console.md): exact numbers, frames, DOM helpers.
// No dependency, no build step: an ES module served by `rsx console`.

// -- numbers: raw integers <-> decimal strings, with string and BigInt arithmetic only ---------------

const INT64_MAX = (1n << 63n) - 1n;

export function big(v) {
  // a raw integer from a frame (number or BigInt) or a digit string, as a BigInt
  if (typeof v === "bigint") return v;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`not an integer: ${v}`);
    return BigInt(v);
  }
  return BigInt(String(v));
}

export function toDecimal(raw, decimals) {
  // raw 6000050, 2 -> "60000.50"; exact for any size
  const v = big(raw);
  const neg = v < 0n;
  let s = (neg ? -v : v).toString();
  if (decimals > 0) {
    s = s.padStart(decimals + 1, "0");
    s = s.slice(0, s.length - decimals) + "." + s.slice(s.length - decimals);
  }
  return (neg ? "-" : "") + s;
}

export class NumberRefused extends Error {
  // a human value the page cannot turn into a raw integer: `reason` is a NAME of the reason table
  constructor(reason, message) { super(message); this.reason = reason; }
}

export function fromDecimal(text, decimals, what) {
  // "60000.5", 2 -> 6000050n; refuses (NumberRefused) what cannot be represented exactly.
  // Tick, lot and limits are the gateway's check (specs/console.md 4).
  const s = String(text).trim();
  const m = /^(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) throw new NumberRefused("BAD_NUMBER", `${what}: ${JSON.stringify(s)} is not a decimal number`);
  const frac = (m[2] || "").replace(/0+$/, "");
  if (frac.length > decimals) {
    throw new NumberRefused(what === "price" ? "PRICE_TOO_PRECISE" : "QTY_TOO_PRECISE",
      `${what}: ${s} has more than ${decimals} decimals`);
  }
  const raw = BigInt(m[1] + frac.padEnd(decimals, "0"));
  if (raw > INT64_MAX) throw new NumberRefused("VALUE_OUT_OF_RANGE", `${what}: ${s} does not fit int64`);
  return raw;
}

// -- frames: one JSON object, one key, an array of fields -------------------------------------------

export function parseFrame(text) {
  // integers beyond 2^53 keep every digit (JSON.parse source text access, where the browser has it)
  const obj = JSON.parse(text, function (key, value, ctx) {
    if (typeof value === "number" && !Number.isSafeInteger(value) && ctx && typeof ctx.source === "string"
        && /^-?\d+$/.test(ctx.source)) {
      return BigInt(ctx.source);
    }
    return value;
  });
  const keys = obj && typeof obj === "object" ? Object.keys(obj) : [];
  if (keys.length !== 1) throw new Error("a frame is an object with one key");
  return [keys[0], obj[keys[0]]];
}

export function frameText(kind, fields) {
  // JSON with BigInt fields written as plain integers (JSON.stringify cannot)
  const parts = fields.map((v) => (typeof v === "bigint" ? v.toString() : JSON.stringify(v)));
  return `{${JSON.stringify(kind)}:[${parts.join(",")}]}`;
}

// -- DOM ----------------------------------------------------------------------------------------------

export function $(id) { return document.getElementById(id); }

export function el(tag, attrs, ...children) {
  // text is always text (never HTML): values from the network are never parsed as markup
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function fill(tbody, rows, empty) {
  tbody.replaceChildren(...rows);
  if (!rows.length && empty) {
    const cols = tbody.closest("table").querySelectorAll("thead th").length || 1;
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: cols }, empty)));
  }
}

export function setState(node, state, text) {
  node.className = "state " + state;
  node.textContent = text;
}

export function timeOf(tsNs) {
  // ns since the epoch -> local HH:MM:SS.mmm
  const ms = Number(big(tsNs) / 1000000n);
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function wsURL(endpoint) {
  // a gateway or marketdata instance of /api/info: its own host, or the page's when it listens on a wildcard
  const host = endpoint.host || location.hostname;
  const h = host.includes(":") ? `[${host}]` : host;
  return `ws://${h}:${endpoint.port}${endpoint.path || "/"}`;
}

export async function getJSON(path, options) {
  const r = await fetch(path, Object.assign({ cache: "no-store" }, options || {}));
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return { status: r.status, ok: r.ok, body };
}
