// The chat explorer: a conversation through the server's OpenAI API (/v1/chat/completions, streamed),
// then the rendered conversation's tokens from /api/chat/attention; clicking a token asks what it
// attended to in every layer and head, and colours the tokens before it by the chosen head's weight.
"use strict";

const $ = (id) => document.getElementById(id);
const messages = [];
let model = null, status = null, attention = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("apiKey").value) h["Authorization"] = "Bearer " + $("apiKey").value;
  return h;
}

function say(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "note";
}

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "message " + role;
  div.dataset.role = role;
  div.textContent = text;
  $("conversation").appendChild(div);
  return div;
}

async function start() {
  status = await (await fetch("/api/status")).json();
  if (status.kind !== "decoder") { say("The chat explorer needs a chat model: attention serve --model FILE.gguf", true); return; }
  for (let l = 1; l <= status.layers; l++) $("layer").add(new Option("layer " + l, l - 1));
  $("head").add(new Option("mean of the heads", -1));
  for (let h = 1; h <= status.heads; h++) {
    const kv = status.keyValueHeads ? " (key/value head " + status.keyValueHeads[h - 1] + ")" : "";
    $("head").add(new Option("head " + h + kv, h - 1));
  }
  $("layer").value = String(status.layers - 1);
  const list = await fetch("/v1/models", { headers: headers() });
  if (list.ok) { model = (await list.json()).data[0].id; $("modelName").textContent = model; }
  else say("The OpenAI API answers " + list.status + (list.status === 401 ? ": give the server's API key." : "."), true);
}

// Reads server-sent events from a fetch response, calling `each` with every JSON chunk.
async function readEvents(response, each) {
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let end;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      const event = pending.slice(0, end);
      pending = pending.slice(end + 2);
      if (event.startsWith("data: ") && event !== "data: [DONE]") each(JSON.parse(event.slice(6)));
    }
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("message").value.trim();
  if (!text) return;
  $("message").value = "";
  $("sendButton").disabled = true;
  messages.push({ role: "user", content: text });
  bubble("user", text);
  const answer = bubble("assistant", "");
  say("answering…");
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ model, messages, stream: true, temperature: 0, max_tokens: Number($("maxTokens").value) }),
    });
    if (!response.ok) throw new Error((await response.json()).error.message);
    let reason = null;
    await readEvents(response, (chunk) => {
      const choice = chunk.choices[0];
      if (!choice) return;
      if (choice.delta && choice.delta.content) answer.textContent += choice.delta.content;
      if (choice.finish_reason) reason = choice.finish_reason;
    });
    messages.push({ role: "assistant", content: answer.textContent });
    answer.dataset.done = reason || "";
    say("finished (" + reason + "); click a token on the right.");
    await explain(null);
  } catch (error) {
    messages.pop();
    answer.remove();
    say(String(error.message || error), true);
  } finally {
    $("sendButton").disabled = false;
  }
}

// Asks what token `query` (null: the last) attends to, and draws the tokens.
async function explain(query) {
  const response = await fetch("/api/chat/attention", { method: "POST", headers: { "Content-Type": "application/json" },
                                                         body: JSON.stringify({ messages, query }) });
  const body = await response.json();
  if (!response.ok) { say(body.error, true); return; }
  const bytes = Uint8Array.from(atob(body.weights), (c) => c.charCodeAt(0));
  attention = { ...body, values: new Uint16Array(bytes.buffer) };
  draw();
}

function weightsOf(layer, head) {
  const a = attention, keys = a.query + 1, row = new Float64Array(keys);
  const heads = head < 0 ? [...Array(a.heads).keys()] : [head];
  for (const h of heads) for (let k = 0; k < keys; k++) row[k] += a.values[(layer * a.heads + h) * keys + k] / 65535 / heads.length;
  return row;
}

function draw() {
  if (!attention) return;
  const layer = Number($("layer").value), head = Number($("head").value);
  const row = weightsOf(layer, head), top = Math.max(...row);
  const box = $("tokens");
  box.textContent = "";
  attention.tokens.forEach((label, i) => {
    const span = document.createElement("span");
    span.className = "token" + (i === attention.query ? " query" : "");
    span.textContent = label;
    span.dataset.index = i;
    if (i <= attention.query) {
      const w = row[i];
      span.dataset.weight = w.toFixed(6);
      // On a square-root scale: the first token (the heads' resting place) would pale the rest.
      span.style.background = "rgba(31, 119, 180, " + (top > 0 ? Math.sqrt(w / top) : 0).toFixed(3) + ")";
      span.title = "weight " + w.toFixed(4);
    }
    span.addEventListener("click", () => explain(i));
    box.appendChild(span);
    box.appendChild(document.createTextNode(" "));
  });
  const headName = head < 0 ? "the mean of the heads" : "head " + (head + 1);
  $("queryText").textContent = "Token " + (attention.query + 1) + " of " + attention.tokens.length + " (“" + attention.tokens[attention.query] +
    "”): its weights in layer " + (layer + 1) + ", " + headName + ", darker for more (square-root scale).";
}

$("send").addEventListener("submit", send);
$("layer").addEventListener("change", draw);
$("head").addEventListener("change", draw);

// `/chat?ask=TEXT&token=N` asks TEXT at once and opens token N (negative: from the end), for links and
// screenshots. A timer ticks meanwhile: a headless browser's virtual time then waits for the answer.
(async () => {
  await start();
  const params = new URLSearchParams(location.search), ask = params.get("ask");
  if (!ask || !model) return;
  const keepAlive = setInterval(() => {}, 50);
  try {
    $("message").value = ask;
    await send({ preventDefault() {} });
    const token = Number(params.get("token"));
    if (attention && params.has("token") && Number.isInteger(token)) {
      const index = token < 0 ? attention.tokens.length + token : token;
      if (index >= 0 && index < attention.tokens.length) await explain(index);
    }
  } finally {
    clearInterval(keepAlive);
  }
})();
