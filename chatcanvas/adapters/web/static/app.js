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

// ------------------------------------------------------------------ recipes

// The PNG carries its recipe as a "chatcanvas" text chunk (JSON): read it for the colourway's swatch.
function pngTexts(buf) {
  const bytes = new Uint8Array(buf);
  const view = new DataView(buf);
  const out = {};
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8");
  for (let at = 8; at + 8 <= bytes.length;) {
    const len = view.getUint32(at);
    const type = latin1.decode(bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + len);
    if (type === "tEXt" || type === "iTXt") {
      const nul = data.indexOf(0);
      const key = latin1.decode(data.subarray(0, nul));
      if (type === "tEXt") {
        out[key] = latin1.decode(data.subarray(nul + 1));
      } else if (data[nul + 1] === 0) { // iTXt, uncompressed: flag, method, language\0, translated\0, text
        let i = data.indexOf(0, nul + 3);
        i = data.indexOf(0, i + 1);
        out[key] = utf8.decode(data.subarray(i + 1));
      }
    }
    if (type === "IEND") break;
    at += 12 + len;
  }
  return out;
}

async function imageRecipe(url) {
  try {
    const resp = await fetch(url, { headers: headers() });
    if (!resp.ok) return null;
    const text = pngTexts(await resp.arrayBuffer()).chatcanvas;
    return text ? JSON.parse(text) : null;
  } catch (e) {
    return null;
  }
}

async function showSwatch(fig, url) {
  const recipe = await imageRecipe(url);
  const way = recipe && recipe.colourway;
  if (!way || !way.hex) return;
  const sw = $(".swatch", fig);
  $(".chip", sw).style.background = way.hex;
  $(".hex", sw).textContent = way.hex;
  sw.dataset.hex = way.hex;
  sw.title = `${way.colour}${way.material ? " " + way.material : ""}: ${way.hex}` +
    (recipe.colour_delta_e != null ? ` (ΔE ${recipe.colour_delta_e} from the product's median colour)` : "");
  sw.hidden = false;
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
    showSwatch(fig, im.url);
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
    setStatus(card, d.note || `Painting… ${d.percent}%`, d.percent);
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
    const why = await problemText(resp);  // read first: a failed card always shows why
    card.classList.add("failed");
    card.dataset.status = "failed";
    return setStatus(card, why);
  }
  follow(card, await resp.json());
}

// ------------------------------------------------------------------ composer

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = promptEl.value.trim();
  if (photo) {
    if (!text) { promptEl.focus(); promptEl.placeholder = "List the colours, e.g. navy, forest green"; return; }
    say("user", text, URL.createObjectURL(photo));
    const fd = new FormData();
    fd.append("image", photo, photo.name || "photo.png");
    fd.append("variations", text);  // read by the server, as every chat platform's text is
    fd.append("conversation", conversation);
    maskBlob().then((mask) => {
      if (mask) fd.append("mask", mask, "mask.png");
      post("v1/variations", fd, "Uploading");
    });
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
    $("#drop-preview").src = URL.createObjectURL(file);  // the mask canvas is sized when it loads
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

// ------------------------------------------------------------------ mask brush
// The mask is painted on a canvas at the photo's own pixel size (the API wants the photo's size):
// painted = the product to recolour. Nothing painted: no mask is sent and the server finds the product.

const preview = $("#drop-preview");
const maskCanvas = $("#mask-canvas");
const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true });
const brush = { erase: false, size: 24, down: false, last: null, painted: false };

function maskState(painted) {
  brush.painted = painted;
  $("#mask-state").textContent = painted
    ? "Mask painted: only the painted area is recoloured."
    : "No mask: the product is found on a plain background. Paint over it to choose.";
  $("#mask-editor").classList.toggle("has-mask", painted);
}

function resetMask() {
  maskCanvas.width = preview.naturalWidth || 1;
  maskCanvas.height = preview.naturalHeight || 1;
  maskCtx.clearRect(0, 0, maskCanvas.width, maskCanvas.height);
  maskState(false);
}
preview.addEventListener("load", resetMask);

function setTool(erase) {
  brush.erase = erase;
  $("#brush-paint").classList.toggle("on", !erase);
  $("#brush-erase").classList.toggle("on", erase);
  $("#brush-paint").setAttribute("aria-pressed", String(!erase));
  $("#brush-erase").setAttribute("aria-pressed", String(erase));
}
$("#brush-paint").addEventListener("click", () => setTool(false));
$("#brush-erase").addEventListener("click", () => setTool(true));
$("#brush-size").addEventListener("input", (e) => {
  brush.size = Number(e.target.value);
  $("#brush-size-out").textContent = e.target.value;
});
$("#mask-clear").addEventListener("click", resetMask);

function canvasPoint(e) {
  const r = maskCanvas.getBoundingClientRect();
  const sx = maskCanvas.width / r.width;
  return { x: (e.clientX - r.left) * sx, y: (e.clientY - r.top) * (maskCanvas.height / r.height), scale: sx };
}

function stroke(from, to) {
  maskCtx.globalCompositeOperation = brush.erase ? "destination-out" : "source-over";
  maskCtx.strokeStyle = maskCtx.fillStyle = "#ff3b6b";
  maskCtx.lineCap = maskCtx.lineJoin = "round";
  maskCtx.lineWidth = brush.size * to.scale;
  maskCtx.beginPath();
  maskCtx.moveTo(from.x, from.y);
  maskCtx.lineTo(to.x + 0.01, to.y);
  maskCtx.stroke();
}

maskCanvas.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  maskCanvas.setPointerCapture(e.pointerId);
  brush.down = true;
  brush.last = canvasPoint(e);
  stroke(brush.last, brush.last);
});
maskCanvas.addEventListener("pointermove", (e) => {
  if (!brush.down) return;
  const p = canvasPoint(e);
  stroke(brush.last, p);
  brush.last = p;
});
function endStroke() {
  if (!brush.down) return;
  brush.down = false;
  maskState(maskHasPaint());
}
maskCanvas.addEventListener("pointerup", endStroke);
maskCanvas.addEventListener("pointercancel", endStroke);

function maskHasPaint() {
  const a = maskCtx.getImageData(0, 0, maskCanvas.width, maskCanvas.height).data;
  for (let i = 3; i < a.length; i += 4) if (a[i] >= 128) return true;
  return false;
}

// The painted canvas as the API's mask: a PNG the photo's size, white = product, black = keep.
function maskBlob() {
  if (!photo || !brush.painted) return Promise.resolve(null);
  const w = maskCanvas.width, h = maskCanvas.height;
  const src = maskCtx.getImageData(0, 0, w, h).data;
  const out = document.createElement("canvas");
  out.width = w;
  out.height = h;
  const octx = out.getContext("2d");
  const img = octx.createImageData(w, h);
  for (let i = 0; i < src.length; i += 4) {
    const v = src[i + 3] >= 128 ? 255 : 0;
    img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
    img.data[i + 3] = 255;
  }
  octx.putImageData(img, 0, 0);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
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
