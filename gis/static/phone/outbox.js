// The outbox: every report, diary entry, visit and batch of positions is written here first (IndexedDB,
// photos as Blobs), then sent. An item leaves the outbox only when the server has answered 2xx — which
// includes "already have it" (200 for a repeated client_id, duplicates for positions) — so a send whose
// answer was lost is simply sent again and the server's idempotency makes it count once.

const DB_NAME = "gridgov-phone";
const STORE = "outbox";
const LOCK = "gridgov-outbox";

let opened = null;

function database() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opened;
}

async function transaction(mode, work) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request ? request.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const putItem = (item) => transaction("readwrite", (store) => store.put(item));
export const removeItem = (id) => transaction("readwrite", (store) => store.delete(id));
export const getItem = (id) => transaction("readonly", (store) => store.get(id));

export async function listItems(userId) {
  const items = (await transaction("readonly", (store) => store.getAll())) || [];
  return items.filter((item) => userId === undefined || item.user === userId)
    .sort((a, b) => a.created.localeCompare(b.created));
}

// A v4 UUID. crypto.randomUUID exists only in secure contexts (https, localhost); getRandomValues
// everywhere.
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Queue a request: {kind, label, url, user, fields (form fields) and photos [{name, type, blob}], or json}. */
export async function enqueue(request) {
  const item = { id: request.id || uuid(), created: new Date().toISOString(), attempts: 0, error: null,
                 failed: false, photos: [], ...request };
  await putItem(item);
  return item;
}

function body(item) {
  if (item.json) return { body: JSON.stringify(item.json), headers: { "Content-Type": "application/json" } };
  const form = new FormData();
  for (const [key, value] of Object.entries(item.fields || {})) {
    if (value !== null && value !== undefined && value !== "") form.append(key, value);
  }
  for (const photo of item.photos || []) form.append("photos", photo.blob, photo.name);
  return { body: form, headers: {} };
}

// Refusals that sending again will not change: kept, marked failed, for the worker to read and delete.
const FINAL = new Set([400, 403, 404, 405, 409, 413, 415, 422]);

async function sendAll(userId, onSent) {
  const outcome = { sent: 0, failed: 0, waiting: 0, needLogin: false };
  for (const item of await listItems(userId)) {
    if (item.failed) { outcome.failed += 1; continue; }
    let response;
    try {
      const { body: payload, headers } = body(item);
      response = await fetch(item.url, { method: "POST", body: payload, headers, credentials: "same-origin",
                                         cache: "no-store" });
    } catch (error) {
      // No network (or it dropped mid-send): everything left waits for the next try.
      item.attempts += 1;
      item.error = "网络不可用，稍后自动重发";
      await putItem(item);
      outcome.waiting += 1;
      break;
    }
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      await removeItem(item.id);
      outcome.sent += 1;
      if (onSent) onSent(item, answer, response.status);
      continue;
    }
    item.attempts += 1;
    item.error = answer.detail || `服务器返回 ${response.status}`;
    if (response.status === 401) {
      await putItem(item);
      outcome.needLogin = true;
      break;
    }
    if (FINAL.has(response.status)) {
      item.failed = true;
      outcome.failed += 1;
      await putItem(item);
      continue;
    }
    await putItem(item);  // 5xx, 408, 429: the server is struggling; try again later
    outcome.waiting += 1;
    break;
  }
  return outcome;
}

let running = null;
let again = false;
let sentHandler = null;

/** Send what waits, oldest first, one sender at a time (also across tabs: Web Locks). A call while a send
 * is under way makes it go round once more, so an item queued meanwhile is not left behind. */
export function flush(userId, onSent) {
  again = true;
  if (onSent) sentHandler = onSent;
  if (running) return running;
  const loop = async () => {
    let outcome = { sent: 0, failed: 0, waiting: 0, needLogin: false };
    while (again) {
      again = false;
      outcome = await sendAll(userId, (...args) => sentHandler && sentHandler(...args));
      if (outcome.needLogin || outcome.waiting) break;
    }
    return outcome;
  };
  running = (navigator.locks ? navigator.locks.request(LOCK, loop) : loop())
    .finally(() => { running = null; });
  return running;
}
