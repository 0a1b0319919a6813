// The trade page (specs/console.md 5.1): the public marketdata WebSocket for the book, trades and BBO,
// the private gateway WebSocket (specs/ws-api.md) for orders, fills, positions, balances and notices.
import { $, big, el, fill, frameText, fromDecimal, getJSON, NumberRefused, parseFrame, setState, timeOf,
  toDecimal, wsURL } from "./common.js";

const S = {
  info: null, sym: null, bySym: new Map(),
  md: null, mdRetry: 0, book: null, trades: [], breaks: 0,
  gw: null, user: null, hb: null, opened: false,
  orders: new Map(), fills: [], fillKeys: new Set(), positions: new Map(), account: null,
  cidSeq: 0, refreshTimer: null,
};
const TERMINAL = new Set(["FILLED", "CANCELLED", "FAILED"]);
const OWN_CANCELS = new Set(["USER_CANCEL", "CANCEL_ALL", "AMEND_PRICE", "NONE"]);
const MAX_TRADES = 50, MAX_FILLS = 200, MAX_LOG = 100;

// -- tables and numbers --------------------------------------------------------------------------

function reason(code) {
  const r = S.info.tables.reasons[String(code)];
  return r ? { name: r[0], message: r[1] } : { name: `reason ${code}`, message: "" };
}
function statusName(code) { return S.info.tables.statuses[String(code)] || `status ${code}`; }
function symOf(id) { return S.bySym.get(Number(id)); }
function px(sym, raw) { const s = symOf(sym); return s ? toDecimal(raw, s.price_decimals) : String(raw); }
function qty(sym, raw) { const s = symOf(sym); return s ? toDecimal(raw, s.qty_decimals) : String(raw); }
function money(raw) { return raw === null || raw === undefined ? "-" : toDecimal(raw, S.info.symbols[0].collateral_decimals); }
function sideName(side) { return Number(side) === 0 ? "buy" : "sell"; }

// -- the log: rejections (each with its reason) and notices ------------------------------------------

function logTo(list, cls, text, detail) {
  const item = el("li", { class: cls }, el("span", { class: "t" }, timeOf(BigInt(Date.now()) * 1000000n)), " ",
    el("span", { class: "what" }, text), detail ? el("span", { class: "why" }, " ", detail) : null);
  list.prepend(item);
  while (list.children.length > MAX_LOG) list.lastChild.remove();
  return item;
}

function reject(text, reasonCode, extra) {
  // every refusal shows its reason: NAME and the table's message
  let detail = extra || "";
  if (reasonCode !== undefined && reasonCode !== null) {
    const r = reason(reasonCode);
    detail = `${r.name}: ${r.message}` + (extra ? ` (${extra})` : "");
  }
  logTo($("rejections"), "reject", text, detail);
  const m = $("order-msg");
  m.className = "msg reject";
  m.textContent = detail ? `${text}: ${detail}` : text;
}

function notice(text, cls) { logTo($("notices"), cls || "notice", text); }

function info(text) {
  const m = $("order-msg");
  m.className = "msg ok";
  m.textContent = text;
}

// -- market data ------------------------------------------------------------------------------------

function mdConnect() {
  const ep = S.info.marketdata[0];
  if (!ep) { setState($("md-state"), "down", "no marketdata instance configured"); return; }
  const ws = new WebSocket(wsURL(ep));
  S.md = ws;
  setState($("md-state"), "idle", "connecting");
  ws.onopen = () => { S.mdRetry = 0; setState($("md-state"), "live", "live"); mdSubscribe(); };
  ws.onmessage = (ev) => { if (ws === S.md) mdFrame(ev.data); };
  ws.onclose = (ev) => {
    if (ws !== S.md) return;
    setState($("md-state"), "down", `closed ${ev.code}${ev.reason ? ": " + ev.reason : ""}; reconnecting`);
    S.mdRetry = Math.min(S.mdRetry + 1, 10);
    setTimeout(mdConnect, 500 * S.mdRetry);
  };
}

function mdSubscribe() {
  S.book = null;
  S.trades = [];
  renderBook();
  renderTrades();
  if (S.md && S.md.readyState === WebSocket.OPEN) S.md.send(frameText("S", [S.sym.id, 7]));
}

function mdFrame(text) {
  const [kind, f] = parseFrame(text);
  if (kind === "E") { notice(`market data refused a request: E ${f[0]}: ${f[1]}`, "warn"); return; }
  if (kind === "H" || kind === "I") return;
  if (Number(f[0]) !== S.sym.id) return;            // a frame of the symbol we just left
  if (kind === "B") {
    const [, bids, asks, , u] = f;
    S.book = { bids: new Map(bids.map(([p, q, c]) => [big(p), [big(q), c]])),
      asks: new Map(asks.map(([p, q, c]) => [big(p), [big(q), c]])), u: big(u) };
    renderBook();
  } else if (kind === "D") {
    const [, changes, , u, pu] = f;
    if (!S.book) return;
    if (big(pu) !== S.book.u) {                      // a hole in the chain: resubscribe for a new snapshot
      S.breaks += 1;
      notice(`book chain broken (pu ${pu} after u ${S.book.u}): resubscribed`, "warn");
      mdSubscribe();
      return;
    }
    for (const [side, p, q, c] of changes) {
      const m = Number(side) === 0 ? S.book.bids : S.book.asks;
      if (big(q) === 0n) m.delete(big(p)); else m.set(big(p), [big(q), c]);
    }
    S.book.u = big(u);
    renderBook();
  } else if (kind === "T") {
    for (const [p, q, side, ts] of f[1]) S.trades.unshift({ p, q, side, ts });
    S.trades.length = Math.min(S.trades.length, MAX_TRADES);
    renderTrades();
  } else if (kind === "BBO") {
    const [sym, bp, bq, , ap, aq] = f;
    $("bbo-bid").textContent = big(bq) ? `${px(sym, bp)} × ${qty(sym, bq)}` : "-";
    $("bbo-ask").textContent = big(aq) ? `${px(sym, ap)} × ${qty(sym, aq)}` : "-";
    $("spread").textContent = big(bq) && big(aq) ? px(sym, big(ap) - big(bp)) : "-";
  }
}

function renderBook() {
  const sym = S.sym.id;
  if (!S.book) {
    fill($("book-asks"), []); fill($("book-bids"), []);
    $("book-info").textContent = "waiting for the book";
    return;
  }
  const levels = (m, desc) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? (desc ? 1 : -1) : (desc ? -1 : 1)));
  const rows = (list, cls) => {
    let total = 0n;
    return list.map(([p, [q, c]]) => {
      total += q;
      return el("tr", { class: `level ${cls}`, dataset: { price: px(sym, p) },
        onclick: () => { $("price").value = px(sym, p); } },
      el("td", { class: "px" }, px(sym, p)), el("td", {}, qty(sym, q)), el("td", {}, String(c)),
      el("td", { class: "muted" }, qty(sym, total)));
    });
  };
  const asks = rows(levels(S.book.asks, false), "ask").reverse();   // best ask next to the middle
  fill($("book-asks"), asks);
  fill($("book-bids"), rows(levels(S.book.bids, true), "bid"));
  $("book-info").textContent = S.book.asks.size || S.book.bids.size
    ? `seq ${S.book.u}${S.breaks ? ` · ${S.breaks} resubscribed` : ""}` : `empty book · seq ${S.book.u}`;
}

function renderTrades() {
  const sym = S.sym.id;
  fill($("trades"), S.trades.map((t) => el("tr", { class: `trade ${Number(t.side) === 0 ? "bid" : "ask"}` },
    el("td", {}, timeOf(t.ts)), el("td", { class: "px" }, px(sym, t.p)), el("td", {}, qty(sym, t.q)),
    el("td", {}, sideName(t.side)))), "no trades yet");
}

// -- login and the private WebSocket ------------------------------------------------------------------

async function login(ev) {
  ev.preventDefault();
  const token = $("token").value.trim();
  if (!token) { reject("login: paste a token first (rsx token --user N)"); return; }
  if (S.gw) S.gw.close(1000, "new login");
  setState($("gw-state"), "idle", "checking the token");
  const r = await getJSON("/api/token", { headers: { Authorization: "Bearer " + token } });
  if (!r.ok || !r.body.valid) {
    const e = r.body && r.body.E ? r.body.E : [r.status, "the console could not check the token"];
    setState($("gw-state"), "down", "logged out");
    reject(`login refused (E ${e[0]})`, null, e[1]);
    return;
  }
  $("token").value = "";                                  // one token, one connection: never kept
  gwConnect(token, r.body);
}

function gwConnect(token, who) {
  const ep = S.info.gateway[0];
  const ws = new WebSocket(wsURL(ep), ["rsx.v1", "bearer." + token]);
  S.gw = ws;
  S.opened = false;
  setState($("gw-state"), "idle", "connecting");
  ws.onopen = () => {
    S.opened = true;
    S.user = who.user_id;
    const until = new Date(Number(big(who.expires_ns) / 1000000n)).toLocaleTimeString();
    $("user").textContent = `user ${who.user_id} · token until ${until}`;
    setState($("gw-state"), "live", "live");
    enableTrading(true);
    $("fills-note").textContent = "loading history";
    send("O", []); send("P", []); send("A", []); send("FL", [0, 50]);
    S.hb = setInterval(() => send("H", [Date.now()]), 1000 * (ep.heartbeat_s || 5));   // below the idle timeout
  };
  ws.onmessage = (ev) => { if (ws === S.gw) gwFrame(ev.data); };
  ws.onclose = (ev) => {
    if (ws !== S.gw) return;
    clearInterval(S.hb);
    enableTrading(false);
    S.gw = null;
    $("user").textContent = "";
    const why = ev.code === 4003 ? "the token expired" : ev.code === 1000 ? "logged out"
      : ev.code === 1001 ? "the gateway is stopping" : ev.code === 4001 ? "idle"
        : ev.code === 4002 ? "too slow to read (slow consumer)" : (ev.reason || `code ${ev.code}`);
    if (!S.opened) {
      reject("the gateway refused the connection", null,
        "the token was already used, or the connection limit (per user / per IP) is reached");
      setState($("gw-state"), "down", "refused");
    } else {
      setState($("gw-state"), ev.code === 1000 ? "idle" : "down", `closed: ${why}; paste a fresh token`);
      notice(`gateway connection closed: ${why}`, ev.code === 1000 ? "notice" : "warn");
    }
  };
}

function send(kind, fields) {
  if (!S.gw || S.gw.readyState !== WebSocket.OPEN) { reject("not connected: log in first"); return false; }
  S.gw.send(frameText(kind, fields));
  return true;
}

function enableTrading(on) {
  for (const id of ["buy", "sell", "cancel-all-sym", "cancel-all", "logout"]) $(id).disabled = !on;
}

function gwFrame(text) {
  const [kind, f] = parseFrame(text);
  switch (kind) {
    case "U": onUpdate(f); break;
    case "F": onFill(f); break;
    case "R": {
      const [req, id, code] = f;
      const what = { C: "cancel", AM: "amend", CA: "cancel-all" }[req] || req;
      reject(`${what} refused (${req === "CA" ? "symbol " + (symOf(id) ? symOf(id).name : id) : "order " + short(id)})`, code);
      break;
    }
    case "E": {
      const [code, msg, ref, rcode] = f;
      if (Number(code) === 1010 && ref === "FL") {      // no history store: not the trader's error
        $("fills-note").textContent = `history unavailable (${msg})`;
        break;
      }
      reject(`gateway refused ${ref === null || ref === undefined ? "a frame" : JSON.stringify(ref)} (E ${code})`,
        rcode === undefined ? null : rcode, msg);
      break;
    }
    case "O":
      S.orders.clear();
      for (const [oid, cid, sym, side, p, q, filled, status, tif, ro, po, ts] of f) {
        S.orders.set(oid, { oid, cid, sym, side, px: p, qty: q, filled, remaining: big(q) - big(filled),
          status: statusName(status), tif, ro, po, ts });
      }
      renderOrders();
      break;
    case "P":
      S.positions.clear();
      for (const row of f) S.positions.set(Number(row[0]), row);
      renderPositions();
      break;
    case "PU":
      if (big(f[1]) === 0n) S.positions.delete(Number(f[0])); else S.positions.set(Number(f[0]), f);
      renderPositions();
      break;
    case "A": case "AU": S.account = f; renderBalances(); break;
    case "FL":
      for (const [oid, sym, side, p, q, fee, maker, ts, seq] of f) addFill({ oid, sym, side, px: p, qty: q, fee, maker, ts, seq });
      $("fills-note").textContent = "";
      renderFills();
      break;
    case "Q": {
      const [sym, k, round, side, q, p, slip, mark] = f;
      const kindName = S.info.tables.liquidation_kinds[String(k)] || `kind ${k}`;
      const s = symOf(sym);
      notice(`liquidation ${kindName} on ${s ? s.name : sym}: round ${round}, ${sideName(side)} ${qty(sym, q)} @ ${px(sym, p)}` +
        `, mark ${px(sym, mark)}, slippage ${slip} bps`, "liquidation");
      scheduleRefresh();
      break;
    }
    case "FP": {
      const [sym, amount, pos, mark] = f;
      const s = symOf(sym);
      notice(`funding on ${s ? s.name : sym}: ${big(amount) >= 0n ? "received" : "paid"} ${money(big(amount) < 0n ? -big(amount) : big(amount))}` +
        ` on ${qty(sym, pos)} at mark ${px(sym, mark)}`, "funding");
      break;
    }
    case "CA": info(`cancel-all sent to ${f[1]} symbol(s)`); break;
    case "H": case "DM": case "M": break;
    default: notice(`unexpected frame ${kind}`, "warn");
  }
}

function short(oid) { return typeof oid === "string" && oid.length === 32 ? oid.slice(0, 8) + "…" : String(oid); }

function onUpdate([oid, status, filled, remaining, rcode, cid, sym, side, p]) {
  const name = statusName(status);
  const o = S.orders.get(oid) || { oid, cid, sym, side, px: p, qty: big(filled) + big(remaining), ts: null };
  Object.assign(o, { status: name, filled, remaining, px: p, cid, sym, side });
  if (o.ts === null) o.ts = BigInt(Date.now()) * 1000000n;
  const label = `${sideName(side)} ${qty(sym, o.qty)} ${symOf(sym) ? symOf(sym).name : sym} @ ${px(sym, p)} (${cid || short(oid)})`;
  const r = reason(rcode).name;
  if (TERMINAL.has(name)) {
    S.orders.delete(oid);
    if (name === "FAILED") reject(`order ${label} failed`, rcode);
    else if (name === "CANCELLED" && !OWN_CANCELS.has(r)) reject(`order ${label} cancelled`, rcode);
    else info(`order ${cid || short(oid)} ${name.toLowerCase()}` + (name === "CANCELLED" ? ` (${r})` : ""));
  } else {
    S.orders.set(oid, o);
    if (name === "PENDING" && r === "TIMEOUT") reject(`order ${label}: no answer in time, it may still execute`, rcode);
    else if (name === "RESTING") info(`order ${cid || short(oid)} resting`);
  }
  renderOrders();
}

function onFill([oid, sym, side, p, q, remaining, maker, ts, seq, cid]) {
  addFill({ oid, sym, side, px: p, qty: q, fee: null, maker, ts, seq, cid });
  const o = S.orders.get(oid);
  if (o) {
    o.filled = big(o.filled) + big(q);
    o.remaining = remaining;
    renderOrders();
  }
  renderFills();
  info(`filled ${qty(sym, q)} @ ${px(sym, p)} (${cid || short(oid)})`);
  scheduleRefresh();
}

function addFill(x) {
  const key = `${x.sym}:${x.seq}:${x.oid}`;
  if (S.fillKeys.has(key)) return;
  S.fillKeys.add(key);
  S.fills.push(x);
  S.fills.sort((a, b) => (big(b.ts) > big(a.ts) ? 1 : big(b.ts) < big(a.ts) ? -1 : 0));
  S.fills.length = Math.min(S.fills.length, MAX_FILLS);
}

function scheduleRefresh() {
  // positions and balances after a fill or a liquidation (pushes PU/AU may also come)
  clearTimeout(S.refreshTimer);
  S.refreshTimer = setTimeout(() => { if (S.gw) { send("P", []); send("A", []); } }, 300);
}

function renderOrders() {
  const rows = [...S.orders.values()].sort((a, b) => (big(b.ts) > big(a.ts) ? 1 : -1)).map((o) => {
    const amendCell = el("td", { class: "actions" },
      el("button", { type: "button", class: "cancel", onclick: () => send("C", [o.oid]) }, "cancel"),
      el("button", { type: "button", class: "amend", onclick: (ev) => openAmend(ev.target.closest("tr"), o) }, "amend"));
    return el("tr", { class: "order", dataset: { oid: o.oid, cid: o.cid || "" } },
      el("td", {}, o.ts === null ? "-" : timeOf(o.ts)), el("td", {}, symOf(o.sym) ? symOf(o.sym).name : o.sym),
      el("td", { class: Number(o.side) === 0 ? "bid" : "ask" }, sideName(o.side)),
      el("td", { class: "px" }, px(o.sym, o.px)), el("td", { class: "remaining" }, qty(o.sym, o.remaining)),
      el("td", {}, qty(o.sym, o.filled)), el("td", { class: "status" }, o.status.toLowerCase()),
      el("td", { class: "muted" }, o.cid || short(o.oid)), amendCell);
  });
  fill($("orders"), rows, S.gw ? "no open orders" : "log in to see your orders");
}

function openAmend(tr, o) {
  const cell = tr.querySelector("td.actions");
  const pIn = el("input", { class: "amend-px", placeholder: px(o.sym, o.px), size: 9 });
  const qIn = el("input", { class: "amend-qty", value: qty(o.sym, o.remaining), size: 9 });
  const go = el("button", { type: "button", class: "amend-send", onclick: () => {
    const s = symOf(o.sym);
    try {
      const newPx = pIn.value.trim() ? fromDecimal(pIn.value, s.price_decimals, "price") : 0n;
      const newQty = fromDecimal(qIn.value, s.qty_decimals, "quantity");
      send("AM", [o.oid, newPx, newQty]);
    } catch (e) {
      if (e instanceof NumberRefused) reject(`amend of ${o.cid || short(o.oid)} not sent`, null, `${e.reason}: ${e.message}`);
      else throw e;
    }
  } }, "send");
  cell.replaceChildren(el("span", { class: "muted" }, "price"), pIn, el("span", { class: "muted" }, "qty"), qIn, go,
    el("button", { type: "button", onclick: renderOrders }, "×"));
}

function renderFills() {
  fill($("fills"), S.fills.map((x) => el("tr", { class: "fill" },
    el("td", {}, timeOf(x.ts)), el("td", {}, symOf(x.sym) ? symOf(x.sym).name : x.sym),
    el("td", { class: Number(x.side) === 0 ? "bid" : "ask" }, sideName(x.side)),
    el("td", { class: "px" }, px(x.sym, x.px)), el("td", {}, qty(x.sym, x.qty)),
    el("td", {}, Number(x.maker) ? "maker" : "taker"), el("td", {}, x.fee === null || x.fee === undefined ? "-" : money(x.fee)),
    el("td", { class: "muted" }, x.cid || short(x.oid)))), S.gw ? "no fills" : "log in to see your fills");
}

function renderPositions() {
  fill($("positions"), [...S.positions.values()].map(([sym, q, entry, mark, upnl, liq, rpnl, im, mm]) =>
    el("tr", { class: "position", dataset: { sym: String(sym) } },
      el("td", {}, symOf(sym) ? symOf(sym).name : sym),
      el("td", { class: big(q) > 0n ? "bid" : "ask" }, qty(sym, q)), el("td", {}, px(sym, entry)),
      el("td", {}, px(sym, mark)), el("td", {}, money(upnl)), el("td", {}, money(rpnl)),
      el("td", {}, big(liq) ? px(sym, liq) : "-"), el("td", {}, money(im)), el("td", {}, money(mm)))),
  S.gw ? "no positions" : "log in to see your positions");
}

function renderBalances() {
  const a = S.account;
  if (!a) { fill($("balances"), [], S.gw ? "loading" : "log in to see your balances"); return; }
  const [collateral, equity, upnl, im, mm, frozen, available, withdrawable, flags] = a;
  const rows = [["collateral", money(collateral)], ["equity", money(equity)], ["unrealized PnL", money(upnl)],
    ["initial margin", money(im)], ["maintenance margin", money(mm)], ["frozen (open orders)", money(frozen)],
    ["available", money(available)], ["withdrawable", money(withdrawable)],
    ["in liquidation", Number(flags) & 1 ? "YES" : "no"]];
  fill($("balances"), rows.map(([k, v]) => el("tr", { class: "account", dataset: { key: k } }, el("th", {}, k),
    el("td", { class: k === "in liquidation" && v === "YES" ? "ask" : "" }, v))));
}

// -- order entry ----------------------------------------------------------------------------------------

function submitOrder(side) {
  // buttons only: Enter in a field never places an order
  const s = S.sym;
  let p, q;
  try {
    p = fromDecimal($("price").value, s.price_decimals, "price");
    q = fromDecimal($("qty").value, s.qty_decimals, "quantity");
  } catch (e) {
    if (e instanceof NumberRefused) { reject("order not sent", e.reason, e.message); return; }
    throw e;
  }
  S.cidSeq += 1;
  const cid = ("w" + Date.now().toString(36) + S.cidSeq.toString(36)).slice(0, 20);
  const tif = Number($("tif").value), stp = Number($("stp").value);
  const ro = $("reduce-only").checked ? 1 : 0, po = $("post-only").checked ? 1 : 0;
  if (send("N", [s.id, side, p, q, cid, tif, ro, po, stp])) info(`sent ${sideName(side)} ${qty(s.id, q)} @ ${px(s.id, p)} (${cid})`);
}

// -- start ------------------------------------------------------------------------------------------------

function pickSymbol() {
  const prev = S.sym;
  S.sym = S.bySym.get(Number($("symbol").value));
  $("price").placeholder = toDecimal(S.sym.tick, S.sym.price_decimals);
  $("qty").placeholder = toDecimal(S.sym.lot, S.sym.qty_decimals);
  if (prev && S.md && S.md.readyState === WebSocket.OPEN) S.md.send(frameText("X", [prev.id, 7]));
  mdSubscribe();
}

async function start() {
  const r = await getJSON("/api/info");
  S.info = r.body;
  for (const s of S.info.symbols) {
    S.bySym.set(s.id, s);
    $("symbol").append(el("option", { value: s.id }, s.name));
  }
  const want = new URLSearchParams(location.search).get("symbol");
  const pick = S.info.symbols.find((s) => s.name === want) || S.info.symbols[0];
  $("symbol").value = String(pick.id);
  $("symbol").addEventListener("change", pickSymbol);
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => { if (S.gw) S.gw.close(1000, "logged out"); });
  $("order-form").addEventListener("submit", (ev) => ev.preventDefault());
  $("buy").addEventListener("click", () => submitOrder(0));
  $("sell").addEventListener("click", () => submitOrder(1));
  $("cancel-all-sym").addEventListener("click", () => send("CA", [S.sym.id]));
  $("cancel-all").addEventListener("click", () => send("CA", []));
  pickSymbol();
  renderOrders(); renderFills(); renderPositions(); renderBalances();
  $("fills-note").textContent = "";
  mdConnect();
  document.body.dataset.ready = "1";
}

start();
