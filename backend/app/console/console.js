// Supervisor console. Talks only to the JSON API; live through GET /api/events.
// Callers' words are untrusted: they only ever reach the page through textContent.

const TOKEN_KEY = "frontdesk.supervisorToken";
const SOUND_KEY = "frontdesk.sound";
const VIEWS = ["pending", "history", "learned", "overview"];
const $ = (sel, root = document) => root.querySelector(sel);
const FORBIDDEN = "That token cannot open the console: it needs a supervisor's token or the admin token.";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null, // GET /api/me: who this console is signed in as
  requests: new Map(), // id -> HelpRequest
  kb: new Map(), // id -> KnowledgeBaseEntry (active ones)
  view: "pending",
  selected: null, // id of the selected pending request
  stats: [],
  loaded: false,
  listeners: 0,
  signingIn: false,
};

class AuthNeeded extends Error {}

// ---- API ------------------------------------------------------------------------------------

async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 || (res.status === 403 && state.token)) {
    askForToken(res.status === 403
      ? FORBIDDEN
      : state.token ? "That token was not accepted. Please sign in again." : "");
    throw new AuthNeeded();
  }
  return res;
}

async function getJson(path) {
  const res = await api(path);
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

async function loadAll() {
  const [pending, recent, kb] = await Promise.all([
    getJson("/api/help-requests?status=pending&limit=500"),
    getJson("/api/help-requests?limit=300"),
    getJson("/api/knowledge-base"),
    loadMe(),
  ]);
  state.requests = new Map([...recent, ...pending].map((r) => [r.id, r]));
  state.kb = new Map(kb.map((e) => [e.id, e]));
  state.loaded = true;
  render();
  if (state.view === "overview") loadStats();
}

async function loadMe() {
  state.me = await getJson("/api/me");
  renderMe();
}

function renderMe() {
  const me = state.me;
  $("#me").textContent = !me ? ""
    : !me.auth ? "Auth is off: this machine only"
    : `Signed in as ${me.name}`;
}

async function refreshRequest(id) {
  const res = await api(`/api/help-requests/${encodeURIComponent(id)}`);
  if (res.status === 404) state.requests.delete(id);
  else if (res.ok) {
    const fresh = await res.json();
    const before = state.requests.get(id);
    // Two fetches of one request can finish in either order: never go back to an older state.
    if (before && isOlder(fresh, before)) return;
    state.requests.set(id, fresh);
    if (fresh.status === "pending" && !before) announce(fresh);
  }
  render();
}

function isOlder(a, b) {
  return a.updated_at < b.updated_at || (a.updated_at === b.updated_at && a.history.length < b.history.length);
}

async function refreshEntry(id) {
  const res = await api(`/api/knowledge-base/${encodeURIComponent(id)}`);
  if (res.ok) {
    const entry = await res.json();
    if (entry.retired_at) state.kb.delete(id);
    else state.kb.set(id, entry);
  }
  render();
}

let statsTimer = null;
function loadStatsSoon() {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(loadStats, 300);
}

async function loadStats() {
  try {
    state.stats = await getJson("/api/stats/daily?days=14");
    renderOverview();
  } catch (err) {
    if (!(err instanceof AuthNeeded)) console.warn(err);
  }
}

// ---- live updates ---------------------------------------------------------------------------

let streamAbort = null;

async function listen() {
  // One listener at a time: a sign-in starts a new one and any older loop stops at its next turn.
  const generation = ++state.listeners;
  let delay = 500;
  while (generation === state.listeners) {
    streamAbort = new AbortController();
    const opened = Date.now();
    try {
      const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
      const res = await fetch("/api/events", { headers, signal: streamAbort.signal });
      if (res.status === 401 || res.status === 403) {
        askForToken(state.token ? FORBIDDEN : "");
        return;
      }
      if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
      await loadAll(); // whatever changed while we were not listening
      setLive(true);
      await readEvents(res.body);
    } catch (err) {
      if (err instanceof AuthNeeded) return;
    } finally {
      // Never leave a stream open behind us: a few of those would stall every request to the host.
      streamAbort.abort();
    }
    if (state.signingIn) return;
    setLive(false);
    if (Date.now() - opened > 10000) delay = 500; // it had been working: try again soon
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5000);
  }
}

async function readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      onEvent(event, data);
    }
  }
}

function onEvent(event, data) {
  const id = data ? JSON.parse(data).id : "";
  if (event === "help_request") refreshRequest(id).catch(ignoreAuth);
  else if (event === "knowledge_base") refreshEntry(id).catch(ignoreAuth);
  else if (event === "resync") loadAll().catch(ignoreAuth);
  else return;
  if (state.view === "overview") loadStatsSoon();
}

function ignoreAuth(err) {
  if (!(err instanceof AuthNeeded)) console.warn(err);
}

function setLive(on) {
  const el = $("#live");
  el.textContent = on ? "live" : "reconnecting…";
  el.classList.toggle("on", on);
}

// ---- alerts ---------------------------------------------------------------------------------

function announce(req) {
  if (!state.loaded) return;
  $("#alert-text").textContent = `New question from ${req.customer_name}: ${req.question}`;
  $("#alert").hidden = false;
  if ($("#sound").checked) beep();
}

let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.3);
  } catch (err) {
    console.warn("no sound:", err);
  }
}

// ---- formatting -----------------------------------------------------------------------------

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${String(m % 60).padStart(2, "0")}m` : `${Math.floor(h / 24)} days`;
}

// Every time on the page in one format, in the supervisor's own time zone; the exact instant is in
// the tooltip.
function timeEl(iso) {
  const el = document.createElement("time");
  el.dateTime = iso;
  el.title = iso;
  el.textContent = new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
  return el;
}

// The server writes some instants into the timeline's words ("times out at 2025-…+00:00"): those
// are shown like every other time.
const ISO_INSTANT = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})/g;

function withTimes(text) {
  const parts = [];
  let from = 0;
  for (const m of text.matchAll(ISO_INSTANT)) {
    parts.push(document.createTextNode(text.slice(from, m.index)), timeEl(m[0]));
    from = m.index + m[0].length;
  }
  parts.push(document.createTextNode(text.slice(from)));
  return parts;
}

function onLine(req) {
  return req.caller_on_line_until && new Date(req.caller_on_line_until) > new Date();
}

function fillTranscript(root, transcript) {
  $(".line-count", root).textContent = `${transcript.length} line${transcript.length === 1 ? "" : "s"}`;
  const list = $(".lines", root);
  list.replaceChildren(
    ...transcript.map((line) => {
      const li = document.createElement("li");
      const who = document.createElement("strong");
      who.textContent = `${line.role}: `;
      li.append(who, document.createTextNode(line.text));
      return li;
    }),
  );
  root.hidden = transcript.length === 0;
}

// ---- Pending --------------------------------------------------------------------------------

const cards = new Map(); // id -> <li>

function pendingRequests() {
  return [...state.requests.values()]
    .filter((r) => r.status === "pending")
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
}

function renderPending() {
  const pending = pendingRequests();
  const list = $("#pending-list");
  for (const [id, card] of cards) {
    if (pending.some((r) => r.id === id) || card.dataset.keep || closing.has(id)) continue;
    const box = $("textarea", card);
    if (box.value.trim() || document.activeElement === box) {
      // Someone else closed it while this supervisor was typing: say so instead of wiping the text.
      keepWithMessage(card, closedBy(state.requests.get(id)));
      continue;
    }
    card.remove();
    cards.delete(id);
  }
  let previous = null;
  for (const req of pending) {
    let card = cards.get(req.id);
    if (!card) {
      card = buildCard(req);
      cards.set(req.id, card);
    }
    fillCard(card, req);
    // Move only when out of place: moving a node would take focus from an answer being typed.
    const wanted = previous ? previous.nextElementSibling : list.firstElementChild;
    if (wanted !== card) list.insertBefore(card, wanted);
    previous = card;
  }
  $("#pending-empty").hidden = pending.length > 0 || list.children.length > 0;
  $("#pending-count").textContent = String(pending.length);
  document.title = pending.length ? `(${pending.length}) Frontdesk · Supervisor console` : "Frontdesk · Supervisor console";
  if (!state.selected || !cards.has(state.selected)) state.selected = pending[0]?.id ?? null;
  for (const [id, card] of cards) card.classList.toggle("selected", id === state.selected);
  tick();
}

function buildCard(req) {
  const card = $("#tpl-pending").content.firstElementChild.cloneNode(true);
  card.dataset.id = req.id;
  const form = $(".answer-form", card);
  const box = $("textarea", form);
  box.addEventListener("focus", () => select(req.id, false));
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
    } else if (ev.key === "Escape") box.blur();
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submitAnswer(card, { answer: box.value.trim() });
  });
  const cant = $(".cant", form);
  cant.addEventListener("click", () => {
    if (!cant.dataset.armed) {
      // Two steps, like retiring an answer: the caller is told at once, so a stray click must not do it.
      armCant(cant, true);
      return;
    }
    armCant(cant, false);
    closeUnanswered(card);
  });
  cant.addEventListener("blur", () => armCant(cant, false));
  loadNearest(card, req.question);
  return card;
}

// The KB search the agent ran, run again: the nearest learned answers and why none was said.
async function loadNearest(card, question) {
  let result;
  try {
    result = await getJson(`/api/knowledge-base/search?q=${encodeURIComponent(question)}`);
  } catch (err) {
    ignoreAuth(err);
    return;
  }
  $(".nearest .reason", card).textContent = result.candidates.length ? result.reason : "nothing learned is near this question";
  const list = $(".near-list", card);
  list.replaceChildren(
    ...result.candidates.map((c) => {
      const li = $("#tpl-near").content.firstElementChild.cloneNode(true);
      $(".near-q", li).textContent = c.entry.question;
      $(".near-a", li).textContent = c.entry.answer;
      $(".near-why", li).textContent = c.rejected ? `Not said: ${c.rejected}` : "The agent would say this one now.";
      const use = $(".use", li);
      use.setAttribute("aria-label", `Send the learned answer to: ${c.entry.question}`);
      use.addEventListener("click", () => submitAnswer(card, { entry_id: c.entry.id }));
      return li;
    }),
  );
}

function fillCard(card, req) {
  $(".question", card).textContent = req.question;
  $(".who", card).textContent = req.customer_name;
  $(".channel", card).textContent = req.channel;
  $(".contact", card).textContent = req.customer_contact ? ` · ${req.customer_contact}` : " · no contact yet";
  $(".on-line", card).hidden = !onLine(req);
  const merged = $(".merged", card);
  merged.hidden = !req.attached.length && !req.attached_to;
  merged.textContent = req.attached_to ? "same question as another caller" : `+${req.attached.length} asked the same`;
  card.dataset.created = req.created_at;
  card.dataset.expires = req.expires_at;
  fillTranscript($(".transcript", card), req.transcript);
}

function tick() {
  const now = Date.now();
  for (const card of cards.values()) {
    if (!card.dataset.created) continue;
    $(".age", card).textContent = duration(now - new Date(card.dataset.created));
    const left = new Date(card.dataset.expires) - now;
    const el = $(".left", card);
    el.textContent = left > 0 ? `${duration(left)} left before it times out` : "timing out";
    el.classList.toggle("urgent", left < 5 * 60 * 1000);
  }
}

async function submitAnswer(card, body) {
  const id = card.dataset.id;
  const out = $(".outcome", card);
  if (!body.unresolved && !body.answer && !body.entry_id) {
    showOutcome(out, "Type an answer first, or choose “Can't answer”.", "error");
    $("textarea", card).focus();
    return;
  }
  for (const b of card.querySelectorAll("button")) b.disabled = true;
  try {
    const res = await api(`/api/help-requests/${encodeURIComponent(id)}/response`, { method: "POST", body });
    const data = await res.json().catch(() => ({}));
    if (res.ok) {
      const ids = pendingRequests().map((r) => r.id);
      const next = ids[ids.indexOf(id) + 1] ?? ids[ids.indexOf(id) - 1] ?? null;
      const wasTyping = document.activeElement?.tagName === "TEXTAREA";
      state.requests.set(id, data);
      cards.delete(id);
      card.remove();
      render();
      if (next) select(next, wasTyping);
      return;
    }
    if (res.status === 409 && data.current) {
      // Someone else got there first: say who and what, keep the card until it is dismissed.
      const cur = data.current;
      state.requests.set(id, cur);
      keepWithMessage(card, closedBy(cur));
      render();
      return;
    }
    const detail = typeof data.detail === "string" ? data.detail : (data.detail || []).map((d) => d.msg).join("; ");
    showOutcome(out, `Not sent: ${detail || res.status}`, "error");
  } catch (err) {
    if (!(err instanceof AuthNeeded)) showOutcome(out, "Not sent: the server did not answer. Try again.", "error");
  }
  for (const b of card.querySelectorAll("button")) b.disabled = false;
}

function armCant(button, armed) {
  if (armed) button.dataset.armed = "1";
  else delete button.dataset.armed;
  button.textContent = armed ? "Confirm: close it and tell the caller" : "Can't answer";
  button.classList.toggle("danger", armed);
}

// How long a confirmed "Can't answer" waits in this page, undoable, before it goes to the server:
// 5 s, or `?undo=SECONDS` in the page's URL.
const undoParam = new URLSearchParams(location.search).get("undo") ?? "";
const UNDO_MS = /^\d+(\.\d+)?$/.test(undoParam) ? Number(undoParam) * 1000 : 5000;
const closing = new Map(); // id -> timer of a "Can't answer" still in its undo window

function closeUnanswered(card) {
  const id = card.dataset.id;
  const question = state.requests.get(id)?.question ?? "";
  const controls = [...card.querySelectorAll("button, textarea")];
  for (const c of controls) c.disabled = true;
  const out = $(".outcome", card);
  showOutcome(out, "Closing as unresolved: undo it in the box at the bottom of the page.", "info");
  const toast = $("#tpl-toast").content.firstElementChild.cloneNode(true);
  const shown = question.length > 80 ? `${question.slice(0, 79)}…` : question;
  $(".text", toast).textContent = `Closing “${shown}” unanswered: the caller will be told no answer was found.`;
  toast.style.setProperty("--undo-ms", `${UNDO_MS}ms`);
  const undo = $(".undo", toast);
  undo.setAttribute("aria-label", `Undo closing: ${question}`);
  $("#toasts").append(toast);
  undo.focus();
  const release = () => {
    closing.delete(id);
    toast.remove();
    out.hidden = true;
    for (const c of controls) c.disabled = false;
  };
  closing.set(id, setTimeout(() => {
    release();
    submitAnswer(card, { unresolved: true });
  }, UNDO_MS));
  undo.addEventListener("click", () => {
    clearTimeout(closing.get(id));
    release();
    render(); // closed elsewhere meanwhile: it leaves now like any other
    select(id);
  });
}

// Who got there first, with what, and when (the same answer may have been sent from this supervisor's
// other window: then it says so).
function closedBy(req) {
  if (!req) return ["This question was closed elsewhere."];
  const mine = state.me?.role === "supervisor" && req.answered_by === state.me.name;
  const text = req.status === "resolved"
    ? mine ? `You already answered this in another window: “${req.answer}”`
      : `Already answered by ${req.answered_by || "another supervisor"}: “${req.answer}”`
    : mine ? "You already closed this as unresolved in another window."
      : `Already closed as unresolved${req.answered_by ? ` by ${req.answered_by}` : " (timed out)"}.`;
  return req.resolved_at ? [text, " (", timeEl(req.resolved_at), ")"] : [text];
}

function keepWithMessage(card, message) {
  card.dataset.keep = "1";
  card.classList.add("closed");
  const out = $(".outcome", card);
  showOutcome(out, "", "info");
  out.replaceChildren(...message);
  for (const b of card.querySelectorAll("button, textarea")) b.disabled = true;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "link";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => {
    cards.delete(card.dataset.id);
    card.remove();
    render();
  });
  out.append(" ", dismiss);
}

function showOutcome(el, text, kind) {
  el.textContent = text;
  el.className = `outcome ${kind}`;
  el.hidden = false;
}

function select(id, focus = true) {
  state.selected = id;
  for (const [cid, card] of cards) card.classList.toggle("selected", cid === id);
  const card = cards.get(id);
  if (focus && card) {
    $("textarea", card).focus();
    card.scrollIntoView({ block: "nearest" });
  }
}

function moveSelection(step) {
  const ids = pendingRequests().map((r) => r.id);
  if (!ids.length) return;
  const at = ids.indexOf(state.selected);
  const next = ids[Math.min(ids.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
  select(next, document.activeElement?.tagName === "TEXTAREA" || step !== 0);
}

// ---- History --------------------------------------------------------------------------------

const openHistory = new Set();

function renderHistory() {
  const filter = $("#history-filter").value;
  const needle = $("#history-search").value.trim().toLowerCase();
  const rows = [...state.requests.values()]
    .filter((r) => r.status !== "pending" && (filter === "all" || r.status === filter))
    .filter((r) => !needle || [r.question, r.answer, r.customer_name, r.customer_contact]
      .some((t) => (t || "").toLowerCase().includes(needle)))
    .sort((a, b) => (b.resolved_at || "").localeCompare(a.resolved_at || ""));
  $("#history-list").replaceChildren(...rows.map(historyRow));
  $("#history-empty").hidden = rows.length > 0;
}

function historyRow(req) {
  const li = $("#tpl-history").content.firstElementChild.cloneNode(true);
  const details = $("details", li);
  details.open = openHistory.has(req.id);
  details.addEventListener("toggle", () => (details.open ? openHistory.add(req.id) : openHistory.delete(req.id)));
  const badge = $(".status", li);
  badge.textContent = req.status === "resolved" ? "answered" : "unresolved";
  badge.classList.add(req.status);
  $(".question", li).textContent = req.question;
  $(".who", li).textContent = `· ${req.customer_name}`;
  $(".when", li).replaceChildren("· ", timeEl(req.resolved_at));
  $(".answer", li).textContent = req.answer ? `Answer: ${req.answer}` : "No answer was given.";
  $(".by", li).textContent = req.answered_by
    ? `${req.status === "resolved" ? "Answered" : "Closed"} by ${req.answered_by}, ${duration(new Date(req.resolved_at) - new Date(req.created_at))} after the question.`
    : "Timed out with no answer.";
  $(".timeline", li).replaceChildren(
    ...req.history.map((h) => {
      const item = document.createElement("li");
      item.append(timeEl(h.timestamp), " ", ...withTimes(h.message));
      return item;
    }),
  );
  fillTranscript($(".transcript", li), req.transcript);
  return li;
}

// ---- Learned answers ------------------------------------------------------------------------

const editing = new Set();

function renderLearned() {
  const needle = $("#kb-search").value.trim().toLowerCase();
  const rows = [...state.kb.values()]
    .filter((e) => !needle || [e.question, e.answer, e.topic || "", ...e.phrasings.map((p) => p.text)].join(" ").toLowerCase().includes(needle))
    .sort((a, b) => b.updated_at.localeCompare(a.updated_at));
  const list = $("#kb-list");
  // Rows being edited are left alone so a live update cannot wipe an edit in progress.
  const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
  list.replaceChildren(...rows.map((e) => (editing.has(e.id) && existing.get(e.id)) || kbRow(e)));
  $("#kb-empty").hidden = rows.length > 0;
}

function kbRow(entry) {
  const li = $("#tpl-kb").content.firstElementChild.cloneNode(true);
  li.dataset.id = entry.id;
  $(".q", li).textContent = entry.question;
  $(".a", li).textContent = entry.answer;
  const used = entry.times_used === 1 ? "used once" : `used ${entry.times_used} times`;
  const last = entry.last_used_at ? [", last ", timeEl(entry.last_used_at)] : [];
  const source = entry.source_request_id ? "learned from a caller's question" : "added by hand";
  $(".meta", li).replaceChildren(
    used, ...last, " · updated ", timeEl(entry.updated_at), ` · ${source}${entry.topic ? ` · ${entry.topic}` : ""}`,
  );
  const form = $(".edit-form", li);
  const out = $(".outcome", li);
  $(".phrasings", li).hidden = !entry.phrasings.length;
  $(".phrasing-list", li).replaceChildren(...entry.phrasings.map((p) => phrasingItem(entry, p, out)));
  $(".edit", li).addEventListener("click", () => {
    editing.add(entry.id);
    form.question.value = entry.question;
    form.answer.value = entry.answer;
    form.hidden = false;
    $(".show", li).hidden = true;
    form.answer.focus();
  });
  const stopEditing = () => {
    editing.delete(entry.id);
    render();
  };
  $(".cancel", li).addEventListener("click", stopEditing);
  form.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") stopEditing();
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const res = await api(`/api/knowledge-base/${encodeURIComponent(entry.id)}`, {
      method: "PATCH",
      body: { question: form.question.value, answer: form.answer.value },
    }).catch(() => null);
    if (res && res.ok) {
      state.kb.set(entry.id, await res.json());
      stopEditing();
    } else {
      const data = res ? await res.json().catch(() => ({})) : {};
      const detail = typeof data.detail === "string" ? data.detail : "the server did not accept it";
      showOutcome(out, `Not saved: ${detail}`, "error");
    }
  });
  const retire = $(".retire", li);
  retire.addEventListener("click", async () => {
    if (!retire.dataset.armed) {
      // Two steps instead of a modal: the first click asks, the second retires.
      retire.dataset.armed = "1";
      retire.textContent = "Retire: are you sure?";
      retire.classList.add("danger");
      return;
    }
    const res = await api(`/api/knowledge-base/${encodeURIComponent(entry.id)}`, { method: "DELETE" }).catch(() => null);
    if (res && res.ok) {
      state.kb.delete(entry.id);
      render();
    } else showOutcome(out, "Not retired: the server did not accept it.", "error");
  });
  return li;
}

function phrasingItem(entry, phrasing, out) {
  const li = $("#tpl-phrasing").content.firstElementChild.cloneNode(true);
  $(".text", li).textContent = `“${phrasing.text}”`;
  const remove = $(".remove", li);
  remove.setAttribute("aria-label", `Remove the phrasing: ${phrasing.text}`);
  remove.addEventListener("click", async () => {
    const path = `/api/knowledge-base/${encodeURIComponent(entry.id)}/phrasings/${encodeURIComponent(phrasing.id)}`;
    const res = await api(path, { method: "DELETE" }).catch(() => null);
    if (res && res.ok) {
      state.kb.set(entry.id, await res.json());
      render();
    } else showOutcome(out, "Not removed: the server did not accept it.", "error");
  });
  return li;
}

function setUpNewEntry() {
  const form = $("#kb-new-form");
  const out = $(".outcome", form);
  const close = () => {
    form.reset();
    form.hidden = true;
    out.hidden = true;
    $("#kb-new").focus();
  };
  $("#kb-new").addEventListener("click", () => {
    form.hidden = false;
    form.question.focus();
  });
  $(".cancel", form).addEventListener("click", close);
  form.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") close();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { question: form.question.value.trim(), answer: form.answer.value.trim() };
    if (form.topic.value.trim()) body.topic = form.topic.value.trim();
    const res = await api("/api/knowledge-base", { method: "POST", body }).catch(() => null);
    if (res && res.ok) {
      const entry = await res.json();
      state.kb.set(entry.id, entry);
      close();
      render();
      return;
    }
    const data = res ? await res.json().catch(() => ({})) : {};
    const detail = typeof data.detail === "string" ? data.detail : (data.detail || []).map((d) => d.msg).join("; ");
    showOutcome(out, `Not saved: ${detail || "the server did not answer"}`, "error");
  });
}

// ---- Overview -------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function barChart(svg, days, value, { max, label, color, extra }) {
  const width = 560, height = 200, left = 36, bottom = 24, top = 12;
  const slot = (width - left) / Math.max(days.length, 1);
  const scale = (v) => ((height - bottom - top) * v) / (max || 1);
  const parts = [svgEl("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" })];
  parts.push(svgEl("text", { x: 2, y: top + 8, class: "tick" }, label(max)));
  parts.push(svgEl("text", { x: 2, y: height - bottom, class: "tick" }, label(0)));
  days.forEach((d, i) => {
    const x = left + i * slot;
    const v = value(d);
    if (v !== null && v !== undefined) {
      const h = scale(v);
      const bar = svgEl("rect", { x: x + slot * 0.15, y: height - bottom - h, width: slot * 0.7, height: Math.max(h, 1), fill: color });
      bar.append(svgEl("title", {}, `${d.day}: ${label(v)}`));
      parts.push(bar);
    }
    if (extra) parts.push(...extra(d, x, slot, height - bottom));
    if (i % 2 === 0 || days.length <= 7) {
      parts.push(svgEl("text", { x: x + slot / 2, y: height - 6, class: "tick", "text-anchor": "middle" }, d.day.slice(5)));
    }
  });
  svg.replaceChildren(...parts);
}

function renderOverview() {
  const days = state.stats;
  const today = days[days.length - 1] || {};
  const pending = pendingRequests().length;
  const tiles = [
    ["Waiting now", String(pending)],
    ["Answered from the KB today", String(today.kb_answers ?? 0)],
    ["Escalated today", String(today.escalations ?? 0)],
    ["Learned answers", String(state.kb.size)],
  ];
  $("#tiles").replaceChildren(
    ...tiles.map(([name, value]) => {
      const div = document.createElement("div");
      div.className = "tile";
      const b = document.createElement("strong");
      b.textContent = value;
      const span = document.createElement("span");
      span.textContent = name;
      div.append(b, span);
      return div;
    }),
  );
  if (!days.length) return;
  barChart($("#chart-share"), days, (d) => d.answered_without_escalation, {
    max: 1, label: (v) => `${Math.round(v * 100)}%`, color: "#1f6f4a",
  });
  const maxMedian = Math.max(1, ...days.map((d) => d.median_minutes_to_answer || 0));
  barChart($("#chart-median"), days, (d) => d.median_minutes_to_answer, {
    max: maxMedian, label: (v) => `${Math.round(v)} min`, color: "#2d5aa0",
    extra: (d, x, slot, base) => (d.timeouts
      ? [svgEl("text", { x: x + slot / 2, y: base - 4, class: "timeouts", "text-anchor": "middle" }, `${d.timeouts}×⏱`)]
      : []),
  });
  $("#stats-table tbody").replaceChildren(
    ...[...days].reverse().map((d) => {
      const tr = document.createElement("tr");
      const cells = [
        d.day, d.kb_answers, d.escalations,
        d.answered_without_escalation === null ? "–" : `${Math.round(d.answered_without_escalation * 100)}%`,
        d.resolved, d.median_minutes_to_answer === null ? "–" : `${d.median_minutes_to_answer} min`, d.timeouts,
      ];
      cells.forEach((c, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        cell.textContent = String(c);
        tr.append(cell);
      });
      return tr;
    }),
  );
}

// ---- views, keys, sign-in -------------------------------------------------------------------

function render() {
  document.body.classList.toggle("unloaded", !state.loaded);
  $("#gate").textContent = state.signingIn ? "Sign in to see the requests: callers may be waiting." : "Loading…";
  renderPending();
  if (state.view === "history") renderHistory();
  if (state.view === "learned") renderLearned();
  if (state.view === "overview") renderOverview();
}

// Each view has its own URL (#/learned), so a reload, a shared link and back/forward keep to it.
function viewInUrl() {
  const view = location.hash.match(/^#\/(\w+)$/)?.[1];
  return VIEWS.includes(view) ? view : "pending";
}

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll(".tabs button")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${view}`;
  // Before the first load the stats come with it (and a request now would only meet the sign-in).
  if (view === "overview" && state.loaded) loadStats();
  render();
}

function onKey(ev) {
  const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(document.activeElement?.tagName);
  if (state.view !== "pending") return;
  if ((ev.altKey && ev.key === "ArrowDown") || (!typing && ev.key === "j")) {
    ev.preventDefault();
    moveSelection(1);
  } else if ((ev.altKey && ev.key === "ArrowUp") || (!typing && ev.key === "k")) {
    ev.preventDefault();
    moveSelection(-1);
  } else if (ev.key === "Enter" && state.selected && [document.body, null].includes(document.activeElement)) {
    ev.preventDefault();
    select(state.selected);
  }
}

function askForToken(message) {
  state.signingIn = true;
  state.loaded = false;
  state.me = null;
  renderMe();
  render();
  const dialog = $("#login");
  $("#login-error").textContent = message;
  $("#login-error").hidden = !message;
  if (streamAbort) streamAbort.abort();
  if (!dialog.open) dialog.showModal();
  $("#token").focus();
}

function signIn(ev) {
  ev.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("#token").value = "";
  $("#login").close();
  $("#sign-out").hidden = false;
  state.signingIn = false;
  render();
  start();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  location.reload();
}

async function start() {
  try {
    await loadAll();
  } catch (err) {
    if (err instanceof AuthNeeded) return;
    setLive(false);
  }
  listen();
}

function init() {
  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => (location.hash = `#/${b.dataset.view}`));
  }
  window.addEventListener("hashchange", () => show(viewInUrl()));
  // The skip link's own fragment would take the view's place in the URL.
  $(".skip").addEventListener("click", (ev) => {
    ev.preventDefault();
    $("#main").focus();
  });
  $("#history-filter").addEventListener("change", renderHistory);
  $("#history-search").addEventListener("input", renderHistory);
  $("#kb-search").addEventListener("input", renderLearned);
  setUpNewEntry();
  $("#alert-close").addEventListener("click", () => ($("#alert").hidden = true));
  $("#login-form").addEventListener("submit", signIn);
  $("#login").addEventListener("cancel", (ev) => ev.preventDefault()); // nothing works without a token
  $("#sign-out").addEventListener("click", signOut);
  $("#sign-out").hidden = !state.token;
  const sound = $("#sound");
  sound.checked = localStorage.getItem(SOUND_KEY) === "on";
  sound.addEventListener("change", () => localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off"));
  document.addEventListener("keydown", onKey);
  // A "Can't answer" in its undo window lives only in this page: leaving would drop it unsent.
  window.addEventListener("beforeunload", (ev) => {
    if (closing.size) ev.preventDefault();
  });
  setInterval(tick, 1000);
  show(viewInUrl());
  start();
}

init();
