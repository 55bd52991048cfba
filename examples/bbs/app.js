// The BBS example (examples/bbs/README.md): a page served by `ddcp serve --api ADDR --app
// examples/bbs` that lists the posts live through a subscription of DDCP's HTTP API
// (docs/api.md) and posts through a transaction. Posts written on any peer appear on every
// peer's page without a reload: DDCP replicates the table, the subscription tells the page.
"use strict";

// The subscription's query: the first column identifies a row.
const POSTS = "select id, author, body, posted_at from posts";
const TOKEN_KEY = "ddcp-bbs-token";
const AUTHOR_KEY = "ddcp-bbs-author";

const posts = new Map(); // id -> [id, author, body, posted_at]
const $ = (selector) => document.querySelector(selector);

// The token: from the address's fragment (`#token=...`, never sent to the server), or typed
// into the token form; kept for this tab only.
function takeToken() {
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// One API request; its answer, or an ApiError with the API's message.
async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`,
      "Content-Type": "application/json",
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const answer = await response.json().catch(() => ({ error: response.statusText }));
    throw new ApiError(response.status, answer.error);
  }
  return response;
}

// The NDJSON lines of an answer, parsed, as they arrive.
async function* lines(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    let end;
    while ((end = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (line) yield JSON.parse(line);
    }
  }
}

function setState(state, text) {
  document.body.dataset.state = state;
  $("#state").textContent = text;
}

// Follows the posts for as long as the page is open: subscribes, applies each event, and
// after a lost connection resumes from the last change id seen (none missed, none repeated);
// when the subscription is gone, subscribes again.
async function followPosts() {
  let subscription = null;
  let changeId = 0;
  for (;;) {
    try {
      const response = subscription === null
        ? await api("/v1/subscriptions", { sql: POSTS })
        : await api(`/v1/subscriptions/${subscription}?from=${changeId}`);
      for await (const line of lines(response)) {
        if (line.error) throw new Error(line.error);
        if (line.columns) {
          if (subscription !== line.id) posts.clear();
          subscription = line.id;
        } else if (line.eoq) {
          changeId = line.eoq.change_id;
        } else if (line.event === "delete") {
          posts.delete(line.row[0]);
          changeId = line.change_id;
        } else if (line.row) {
          posts.set(line.row[0], line.row);
          if (line.change_id) changeId = line.change_id;
        }
        if (!line.row || line.change_id) render();
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return askForToken(err.message);
      // Gone (404) or too far behind (410): start over with the rows as they are now.
      if (err instanceof ApiError && (err.status === 404 || err.status === 410)) {
        subscription = null;
      }
      setState("reconnecting", `reconnecting: ${err.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// The list, newest first. Every text goes in as text: a post is a peer's words, never markup.
function render() {
  const sorted = [...posts.values()].sort((a, b) => b[3] - a[3] || String(a[0]).localeCompare(String(b[0])));
  const items = sorted.map(([id, author, body, postedAt]) => {
    const item = document.createElement("li");
    item.dataset.id = id;
    const who = document.createElement("span");
    who.className = "author";
    who.textContent = author;
    const when = document.createElement("time");
    when.className = "when";
    when.dateTime = new Date(postedAt).toISOString();
    when.textContent = new Date(postedAt).toLocaleString();
    const text = document.createElement("p");
    text.className = "body";
    text.textContent = body;
    item.append(who, when, text);
    return item;
  });
  $("#posts").replaceChildren(...items);
  setState("live", `live · ${posts.size} post${posts.size === 1 ? "" : "s"}`);
}

// A new post's id: random, so that peers never take each other's.
function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function post(event) {
  event.preventDefault();
  const form = event.target;
  const author = form.author.value.trim();
  const body = form.body.value.trim();
  if (!author || !body) return;
  localStorage.setItem(AUTHOR_KEY, author);
  form.querySelector("button").disabled = true;
  try {
    await api("/v1/transactions", {
      statements: [{
        sql: "insert into posts (id, author, body, posted_at) values (?1, ?2, ?3, ?4)",
        params: [newId(), author, body, Date.now()],
      }],
    });
    // The subscription shows it, as it shows every peer's.
    form.body.value = "";
  } catch (err) {
    setState("error", `not posted: ${err.message}`);
  } finally {
    form.querySelector("button").disabled = false;
  }
}

function askForToken(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  setState("token", why || "the page needs the API's token");
  $("#post-form").hidden = true;
  $("#token-form").hidden = false;
}

function start() {
  $("#post-form").hidden = false;
  $("#token-form").hidden = true;
  $("#author").value = localStorage.getItem(AUTHOR_KEY) || "";
  setState("connecting", "connecting");
  followPosts();
}

$("#post-form").addEventListener("submit", post);
$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, event.target.token.value.trim());
  event.target.token.value = "";
  start();
});
if (takeToken()) start();
else askForToken();
