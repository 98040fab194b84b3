"use strict";
const $ = (id) => document.getElementById(id);
const headColors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"];

// ---------- toy explorer ----------
const toy = {
  tokens: [
    { name: "The", key: [0.2, 0.0, 0.4], value: [0.1, 0.1, 0.1] },
    { name: "cat", key: [2.5, 0.5, 0.0], value: [1.0, 0.0, 0.0] },
    { name: "sat", key: [0.5, 2.5, 0.2], value: [0.0, 1.0, 0.0] },
    { name: "on",  key: [0.0, 0.2, 0.6], value: [0.1, 0.0, 0.2] },
    { name: "the", key: [0.2, 0.0, 0.4], value: [0.1, 0.1, 0.1] },
    { name: "mat", key: [2.0, 0.0, 2.0], value: [0.0, 0.0, 1.0] },
  ],
  query: 1,
  pending: 0,
};

function buildTokenTable() {
  const body = $("tokens").querySelector("tbody");
  body.innerHTML = "";
  toy.tokens.forEach((t, i) => {
    const row = document.createElement("tr");
    const radio = `<td><input type="radio" name="query" value="${i}" ${i === toy.query ? "checked" : ""} aria-label="query ${escapeHTML(t.name)}"></td>`;
    const name = `<td><input type="text" value="${escapeHTML(t.name)}" data-i="${i}" data-field="name" style="width:64px"></td>`;
    const cells = (field) => t[field].map((x, c) =>
      `<td><input type="number" step="0.1" value="${x}" data-i="${i}" data-field="${field}" data-c="${c}" aria-label="${escapeHTML(t.name)} ${field} ${c}"></td>`).join("");
    row.innerHTML = radio + name + cells("key") + cells("value");
    body.appendChild(row);
  });
  body.querySelectorAll("input").forEach((input) => input.addEventListener("input", onTokenEdit));
}

function onTokenEdit(event) {
  const input = event.target;
  if (input.name === "query") { toy.query = Number(input.value); update(); return; }
  const t = toy.tokens[Number(input.dataset.i)];
  if (input.dataset.field === "name") { t.name = input.value; }
  else {
    const x = Number(input.value);
    if (!Number.isFinite(x)) return;
    t[input.dataset.field][Number(input.dataset.c)] = x;
  }
  update();
}

async function update() {
  const temperature = Number($("temperature").value);
  const d = toy.tokens[0].key.length;
  const scale = 1 / (temperature * Math.sqrt(d));
  $("scaleText").textContent = `T = ${temperature.toFixed(2)}, scale = 1/(T·√${d}) = ${scale.toFixed(3)}`;
  const mask = $("mask").value;
  const body = {
    query: toy.tokens.map((t) => t.key),
    key: toy.tokens.map((t) => t.key),
    value: toy.tokens.map((t) => t.value),
    scale,
    causal: mask === "causal",
  };
  if (mask === "window") body.window = [1, 1];
  const ticket = ++toy.pending;
  try {
    const response = await fetch("/api/attend", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const result = await response.json();
    if (ticket !== toy.pending) return;  // a newer request is on its way
    if (!response.ok) { $("toyError").textContent = result.error; return; }
    $("toyError").textContent = "";
    render(result);
  } catch (error) {
    $("toyError").textContent = `The server did not answer: ${error}`;
  }
}

function render(result) {
  const i = toy.query;
  const weights = result.weights[i];
  $("queryName").textContent = `“${toy.tokens[i].name}”`;
  const box = $("weights");
  box.innerHTML = "";
  weights.forEach((w, j) => {
    const row = document.createElement("div");
    row.className = "row" + (w === 0 ? " hidden-key" : "");
    row.innerHTML = `<span>${escapeHTML(toy.tokens[j].name)}</span><div class="track"><div class="bar" data-weight="${w}" style="width:${(100 * w).toFixed(2)}%"></div></div><span class="mono">${w.toFixed(3)}</span>`;
    box.appendChild(row);
  });
  const visible = weights.filter((w) => w > 0).length;
  const entropy = -weights.reduce((s, w) => s + (w > 0 ? w * Math.log(w) : 0), 0);
  $("entropy").textContent = `entropy ${entropy.toFixed(3)} nats (0 = one token, ln ${visible} = ${Math.log(visible).toFixed(3)} = uniform over the ${visible} visible)`;
  const seen = toy.tokens.filter((_, j) => weights[j] > 0);
  const average = toy.tokens[0].value.map((_, c) => seen.reduce((s, t) => s + t.value[c], 0) / Math.max(1, seen.length));
  const output = result.output[i];
  const strip = (v) => `<span class="vector">${v.map((x) => `<span title="${x.toFixed(3)}" style="background:${diverging(x)}"></span>`).join("")}</span>`;
  $("blend").innerHTML =
    `<tr><td>attention</td><td>${strip(output)}</td><td>[${output.map((x) => x.toFixed(3)).join(", ")}]</td></tr>` +
    `<tr><td>average</td><td>${strip(average)}</td><td>[${average.map((x) => x.toFixed(3)).join(", ")}]</td></tr>`;
}

function diverging(x) {
  const t = Math.max(-1, Math.min(1, x));
  const a = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? `rgb(${a},${a},255)` : `rgb(255,${a},${a})`;
}

$("temperature").addEventListener("input", update);
$("mask").addEventListener("change", update);
buildTokenTable();
update();

// ---------- model explorer ----------
const model = { result: null, layer: 0, heads: new Set(), focus: null, selectedHead: null, vectors: null };

async function checkModel() {
  try {
    const status = await (await fetch("/api/status")).json();
    if (!status.model) { $("modelStatus").textContent = status.message; return; }
    const causal = status.kind === "gpt2" || status.kind === "decoder";
    const groups = status.keyValueHeads;
    $("modelStatus").textContent = `${status.name}: ${status.layers} layers × ${status.heads} heads` +
      (groups ? ` sharing ${Math.max(...groups)} key/value heads (kv n under each head)` : "") + `, up to ${status.maxTokens} tokens` +
      (causal ? "; causal: each token reads itself and the tokens before it." : ".");
    $("pairLabel").hidden = causal;
    if (status.kind === "gpt2") $("text").value = "ROMEO. But soft, what light through yonder window breaks?";
    if (status.kind === "decoder") $("text").value = "The capital of France is Paris, and the capital of Italy is";
    $("modelControls").hidden = false;
    $("layer").innerHTML = Array.from({ length: status.layers }, (_, l) => `<option value="${l}">${l + 1}</option>`).join("");
    $("heads").innerHTML = Array.from({ length: status.heads }, (_, h) =>
      `<label${groups ? ` title="reads key/value head ${groups[h]}"` : ""}><input type="checkbox" value="${h}" checked><span class="swatch" style="background:${headColors[h % headColors.length]}"></span>${h + 1}${groups ? ` <sub>kv ${groups[h]}</sub>` : ""}</label>`).join("");
    for (let h = 0; h < status.heads; h++) model.heads.add(h);
    $("heads").querySelectorAll("input").forEach((box) => box.addEventListener("change", () => {
      const h = Number(box.value);
      box.checked ? model.heads.add(h) : model.heads.delete(h);
      drawHeadView();
    }));
    $("layer").addEventListener("change", () => { model.layer = Number($("layer").value); drawHeadView(); markThumbnail(); });
    $("explain").addEventListener("click", explain);
    explain();
  } catch (error) {
    $("modelStatus").textContent = `Could not ask the server about the model: ${error}`;
  }
}

async function explain() {
  $("modelError").textContent = "";
  const body = { text: $("text").value };
  if (!$("pairLabel").hidden && $("pair").value.trim()) body.pair = $("pair").value;
  const response = await fetch("/api/explain", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const result = await response.json();
  if (!response.ok) { $("modelError").textContent = result.error; return; }
  model.result = result;
  model.maps = decodeMaps(result.attention);
  model.focus = null;
  model.vectors = null;
  drawHeadView();
  drawModelView();
  if (model.selectedHead !== null) await loadVectors();
}

function drawHeadView() {
  const result = model.result;
  if (!result) return;
  const svg = $("headview");
  const tokens = result.tokens, n = tokens.length, rowHeight = 18, top = 10;
  const width = svg.clientWidth || 500, left = 110, right = width - 110;
  svg.setAttribute("height", top * 2 + n * rowHeight);
  const y = (i) => top + i * rowHeight + rowHeight / 2;
  let out = "";
  for (const h of model.heads) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const w = model.maps.weight(model.layer, h, i, j);
        if (w < 0.02) continue;
        if (model.focus && !((model.focus.side === "q" && model.focus.i === i) || (model.focus.side === "k" && model.focus.i === j))) continue;
        out += `<line x1="${left}" y1="${y(i)}" x2="${right}" y2="${y(j)}" stroke="${headColors[h % headColors.length]}" stroke-opacity="${Math.min(1, w).toFixed(3)}" stroke-width="${(1 + 2 * w).toFixed(2)}"/>`;
      }
    }
  }
  tokens.forEach((t, i) => {
    const bold = model.focus && model.focus.i === i ? ' font-weight="bold"' : "";
    out += `<text x="${left - 6}" y="${y(i) + 4}" text-anchor="end" data-side="q" data-i="${i}"${bold}>${escapeHTML(t)}</text>`;
    out += `<text x="${right + 6}" y="${y(i) + 4}" data-side="k" data-i="${i}">${escapeHTML(t)}</text>`;
  });
  svg.innerHTML = out;
  svg.querySelectorAll("text").forEach((label) => {
    label.addEventListener("mouseenter", () => { model.focus = { side: label.dataset.side, i: Number(label.dataset.i) }; drawHeadView(); });
    label.addEventListener("mouseleave", () => { model.focus = null; drawHeadView(); });
    if (label.dataset.side === "q") label.addEventListener("click", () => showVectors(Number(label.dataset.i)));
  });
}

function drawModelView() {
  const result = model.result;
  const layers = model.maps.layers, heads = model.maps.heads, n = result.tokens.length;
  const grid = $("modelview");
  grid.style.gridTemplateColumns = `repeat(${heads}, 1fr)`;
  grid.innerHTML = "";
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const canvas = document.createElement("canvas");
      canvas.width = n; canvas.height = n;
      canvas.title = `layer ${l + 1}, head ${h + 1}`;
      canvas.dataset.layer = l; canvas.dataset.head = h;
      const context = canvas.getContext("2d");
      const image = context.createImageData(n, n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        const w = model.maps.weight(l, h, i, j), k = 4 * (i * n + j);
        const shade = Math.round(255 * (1 - Math.sqrt(w)));
        image.data[k] = shade; image.data[k + 1] = shade; image.data[k + 2] = 255; image.data[k + 3] = 255;
      }
      context.putImageData(image, 0, 0);
      canvas.addEventListener("click", () => openHead(l, h));
      grid.appendChild(canvas);
    }
  }
  markThumbnail();
}

function markThumbnail() {
  $("modelview").querySelectorAll("canvas").forEach((c) => c.classList.toggle("selected",
    Number(c.dataset.layer) === model.layer && model.selectedHead !== null && Number(c.dataset.head) === model.selectedHead));
}

async function openHead(layer, head) {
  model.layer = layer;
  model.selectedHead = head;
  $("layer").value = String(layer);
  model.heads = new Set([head]);
  $("heads").querySelectorAll("input").forEach((box) => { box.checked = Number(box.value) === head; });
  drawHeadView();
  markThumbnail();
  await loadVectors();
  $("headview").scrollIntoView({ behavior: "smooth", block: "center" });
}

async function loadVectors() {
  const body = { text: $("text").value, layer: model.layer + 1, head: model.selectedHead + 1, attention: false };
  if (!$("pairLabel").hidden && $("pair").value.trim()) body.pair = $("pair").value;
  const response = await fetch("/api/explain", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const result = await response.json();
  if (!response.ok) { $("modelError").textContent = result.error; return; }
  model.vectors = result.vectors;
  $("vectorTitle").textContent = `layer ${result.vectors.layer}, head ${result.vectors.head}`;
  $("vectors").textContent = "Click a query token in the head view.";
}

function showVectors(i) {
  const v = model.vectors, result = model.result;
  if (!v || model.selectedHead === null) { $("vectors").textContent = "Choose one head first: click a thumbnail in the model view."; return; }
  const q = v.queries[i];
  const extent = Math.max(...v.queries.flat().map(Math.abs), ...v.keys.flat().map(Math.abs), 1e-9);
  const strip = (x) => `<span class="vector">${x.map((a) => `<span style="width:7px;background:${diverging(a / extent)}" title="${a.toFixed(3)}"></span>`).join("")}</span>`;
  let rows = `<tr><th>key</th><th>k</th><th>q·k</th><th>scale·q·k</th><th>weight</th></tr>`;
  result.tokens.forEach((t, j) => {
    const dot = q.reduce((s, a, c) => s + a * v.keys[j][c], 0);
    const w = model.maps.weight(v.layer - 1, v.head - 1, i, j);
    rows += `<tr><td>${escapeHTML(t)}</td><td>${strip(v.keys[j])}</td><td>${dot.toFixed(2)}</td><td>${(v.scale * dot).toFixed(2)}</td><td>${w.toFixed(3)}</td></tr>`;
  });
  $("vectors").innerHTML = `<p>query “${escapeHTML(result.tokens[i])}”: ${strip(q)} (scale 1/√${q.length} = ${v.scale.toFixed(3)})</p><table>${rows}</table>`;
}

// The response's weights: 16-bit fractions of 1, little-endian, base64 (AttentionMaps in ExplorerAPI.swift).
function decodeMaps(maps) {
  const text = atob(maps.data), bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const view = new DataView(bytes.buffer), t = maps.tokens;
  return {
    layers: maps.layers, heads: maps.heads,
    weight: (l, h, i, j) => view.getUint16(2 * (((l * maps.heads + h) * t + i) * t + j), true) / 65535,
  };
}

function escapeHTML(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

checkModel();
