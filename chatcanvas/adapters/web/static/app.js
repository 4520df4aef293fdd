// chatcanvas web chat: plain JavaScript, no build step. Talks to the v1 API and follows jobs by SSE.
// URLs are relative to the page, so the app works mounted under any path.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const logEl = $("#log");
const form = $("#composer");
const promptEl = $("#prompt");
const fileEl = $("#file");
let photo = null; // the attached product photo (a File)

function randomId() {
  const a = new Uint8Array(8);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}
const clientId = localStorage.getItem("chatcanvas.client") || randomId();
localStorage.setItem("chatcanvas.client", clientId);
const conversation = sessionStorage.getItem("chatcanvas.conversation") || randomId();
sessionStorage.setItem("chatcanvas.conversation", conversation);

function apiKey() { return localStorage.getItem("chatcanvas.key") || ""; }
function headers(extra = {}) {
  const h = { "X-Chatcanvas-User": "browser-" + clientId, ...extra };
  if (apiKey()) h.Authorization = "Bearer " + apiKey();
  return h;
}
// EventSource and <img> cannot send headers: the key goes once, in a header, for an HttpOnly same-site
// session cookie (POST v1/session); image links come signed. The key never travels in a URL.
let session = null;
function openSession() {
  if (!apiKey()) return Promise.resolve();
  if (!session) session = fetch("v1/session", { method: "POST", headers: headers() }).catch(() => { session = null; });
  return session;
}

function scrollDown() { logEl.scrollTop = logEl.scrollHeight; }
function say(cls, text, img) {
  const div = document.createElement("div");
  div.className = "msg " + cls;
  div.textContent = text;
  if (img) {
    const i = document.createElement("img");
    i.src = img;
    i.alt = "your photo";
    div.appendChild(i);
  }
  logEl.appendChild(div);
  scrollDown();
  return div;
}

async function problemText(resp) {
  try {
    const body = await resp.json();
    if (resp.status === 401) $("#key-row").hidden = false;
    return body.detail || body.title || resp.statusText;
  } catch (e) {
    return resp.status + " " + resp.statusText;
  }
}

// ------------------------------------------------------------------ jobs

function newJobCard() {
  const card = $("#job-tpl").content.firstElementChild.cloneNode(true);
  logEl.appendChild(card);
  scrollDown();
  return card;
}

function setStatus(card, text, percent) {
  $(".status", card).textContent = text;
  if (percent !== undefined) $(".fill", card).style.width = Math.max(2, percent) + "%";
}

function addImages(card, images) {
  const grid = $(".grid", card);
  for (const im of images) {
    if (grid.querySelector(`[data-id="${im.id}"]`)) continue;
    const fig = $("#image-tpl").content.firstElementChild.cloneNode(true);
    fig.dataset.id = im.id;
    const img = $("img", fig);
    img.src = im.url;
    img.alt = im.revised_prompt || im.prompt;
    img.title = `${im.revised_prompt || im.prompt}\nseed ${im.seed}, ${im.width}x${im.height}, ${im.model}`;
    $("a.open", fig).href = im.url;
    const dl = $("a.download", fig);
    dl.href = im.url + "?download=1";
    dl.setAttribute("download", `chatcanvas-${im.id.slice(0, 12)}.png`);
    $(".reroll", fig).addEventListener("click", () => post(`v1/images/${im.id}/reroll`, null, "Reroll"));
    $(".vary", fig).addEventListener("click", () => post(`v1/images/${im.id}/vary`, null, "Variations"));
    grid.appendChild(fig);
  }
  scrollDown();
}

function showJob(card, job) {
  const prompts = $(".prompts", card);
  if (job.prompts && job.prompts.length && !prompts.children.length) {
    for (const p of job.prompts) {
      const li = document.createElement("li");
      li.textContent = p;
      prompts.appendChild(li);
    }
  }
  const texts = $(".texts", card);
  texts.textContent = (job.texts || []).join(" ");
  if (job.images) addImages(card, job.images);
}

async function follow(card, job) {
  card.dataset.job = job.id;
  showJob(card, job);
  $(".cancel", card).onclick = async () => {
    await fetch(job.links.self, { method: "DELETE", headers: headers() });
  };
  if (["done", "failed", "cancelled"].includes(job.status)) return finish(card, job);
  setStatus(card, queuedText(job.position), job.percent || 0);
  await openSession();
  const es = new EventSource(job.links.events);
  const on = (name, fn) => es.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  on("queued", (d) => {
    if (d.prompts) showJob(card, { prompts: d.prompts });
    setStatus(card, queuedText(d.position));
  });
  on("started", () => setStatus(card, "Painting…"));
  on("progress", (d) => {
    setStatus(card, `Painting… ${d.percent}%`, d.percent);
    if (d.preview) { const p = $(".preview", card); p.src = d.preview; p.hidden = false; }
  });
  on("images", (d) => { addImages(card, d.images); setStatus(card, `Painting… ${d.percent}%`, d.percent); });
  on("text", (d) => { $(".texts", card).textContent += " " + d.text; });
  on("refused", (d) => say("bot error", d.reason));
  on("job_failed", (d) => say("bot error", d.reason));
  for (const name of ["done", "failed", "cancelled"]) {
    on(name, (d) => { es.close(); finish(card, d); });
  }
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) setStatus(card, "Lost the connection; reload to see the result.");
  };
}

function queuedText(position) {
  if (position === null || position === undefined) return "Thinking…";
  return position > 0 ? `Queued — ${position} ahead of you` : "Queued — you're next";
}

function finish(card, job) {
  $(".preview", card).hidden = true;
  showJob(card, job);
  card.classList.add(job.status);
  card.dataset.status = job.status;
  if (job.status === "done") {
    const n = (job.images || []).length;
    setStatus(card, n ? `Done: ${n} image${n === 1 ? "" : "s"}.` : "Done.", 100);
  } else if (job.status === "cancelled") {
    setStatus(card, "Cancelled.");
  } else {
    setStatus(card, "Failed: " + ((job.errors || []).join(" ") || "something went wrong."));
  }
}

async function post(url, body, label) {
  const card = newJobCard();
  if (label) setStatus(card, label + "…");
  let resp;
  try {
    resp = await fetch(url, body instanceof FormData
      ? { method: "POST", body, headers: headers() }
      : { method: "POST", body: JSON.stringify(body || {}), headers: headers({ "Content-Type": "application/json" }) });
  } catch (e) {
    card.classList.add("failed");
    return setStatus(card, "Could not reach the server.");
  }
  if (!resp.ok) {
    card.classList.add("failed");
    card.dataset.status = "failed";
    return setStatus(card, await problemText(resp));
  }
  follow(card, await resp.json());
}

// ------------------------------------------------------------------ composer

function parseVariations(text) {
  // "mug: navy, forest green" -> subject "mug", variations ["navy", "forest green"]
  let subject = "";
  let rest = text;
  const colon = text.indexOf(":");
  if (colon > 0) { subject = text.slice(0, colon).trim(); rest = text.slice(colon + 1); }
  const variations = rest.split(/,|\band\b|\n/).map((s) => s.trim()).filter(Boolean);
  return { subject, variations };
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = promptEl.value.trim();
  if (photo) {
    const { subject, variations } = parseVariations(text);
    if (!variations.length) { promptEl.focus(); promptEl.placeholder = "List the colours, e.g. navy, forest green"; return; }
    say("user", text, URL.createObjectURL(photo));
    const fd = new FormData();
    fd.append("image", photo, photo.name || "photo.png");
    fd.append("variations", JSON.stringify(variations));
    if (subject) fd.append("subject", subject);
    fd.append("conversation", conversation);
    post("v1/variations", fd, "Uploading");
    setPhoto(null);
  } else {
    if (!text) return;
    say("user", text);
    post("v1/generations", { text, conversation });
  }
  promptEl.value = "";
});

promptEl.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
});

function setPhoto(file) {
  photo = file;
  $("#drop").hidden = !file;
  if (file) {
    $("#drop-preview").src = URL.createObjectURL(file);
    $("#drop-name").textContent = file.name || "photo";
    promptEl.placeholder = "Which colours? e.g. navy, forest green (or “mug: navy, red”)";
  } else {
    fileEl.value = "";
    promptEl.placeholder = "Ask for an image, or drop a product photo and list colours…";
  }
}
fileEl.addEventListener("change", () => setPhoto(fileEl.files[0] || null));
$("#drop-clear").addEventListener("click", () => setPhoto(null));
for (const target of [form, logEl]) {
  target.addEventListener("dragover", (e) => { e.preventDefault(); form.classList.add("dragging"); });
  target.addEventListener("dragleave", () => form.classList.remove("dragging"));
  target.addEventListener("drop", (e) => {
    e.preventDefault();
    form.classList.remove("dragging");
    const f = [...(e.dataTransfer.files || [])].find((x) => x.type.startsWith("image/"));
    if (f) setPhoto(f);
  });
}

$("#save-key").addEventListener("click", () => {
  localStorage.setItem("chatcanvas.key", $("#api-key").value.trim());
  session = null;
  openSession();
  $("#key-row").hidden = true;
});

fetch("v1", { headers: headers() }).then(async (r) => {
  if (r.status === 401) { $("#key-row").hidden = false; return; }
  const info = await r.json();
  const note = $("#model-note");
  note.textContent = info.demo_model
    ? "Demo model: small 64×64 product photos (t-shirt, mug, sneaker, cap, tote bag)."
    : `Model: ${info.model} (${info.backend})`;
  note.hidden = false;
}).catch(() => {});
promptEl.focus();
