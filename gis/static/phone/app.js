// The grid worker's phone page: tabs as hash routes of one page, the REST API with the login cookie, and
// an outbox (outbox.js) that keeps reports, diary entries, visits and positions until the server has
// them. Server data is put in the page as text (never as HTML).

import { enqueue, flush, getItem, listItems, putItem, removeItem, uuid } from "./outbox.js";
import { gridMap } from "./map.js";

const API = "/api/v1";
const RETRY_MS = 20_000;
const NOTICE_POLL_MS = 60_000;
const BATCH_FIXES = 20;
const BATCH_MS = 30_000;
const ALLOWED_PHOTO = ["image/jpeg", "image/png", "image/webp", "image/heic"];
const SHRINK_ABOVE = 1.5 * 1024 * 1024;

const state = { me: null, meta: null, grids: null, position: null, visitTarget: null, noticesOff: false,
                answers: new Map() };

// ------------------------------------------------------------------ small helpers
const $ = (selector, root = document) => root.querySelector(selector);

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

let toastTimer = null;
function toast(message, error = false) {
  const box = $("#toast");
  box.textContent = message;
  box.classList.toggle("error", error);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, error ? 6000 : 3500);
}

function banner(message, error = false) {
  const box = $("#banner");
  box.textContent = message || "";
  box.classList.toggle("error", error);
  box.hidden = !message;
}

const today = () => {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
};

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}月${d.getDate()}日 ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const empty = (text) => h("li", { class: "empty" }, text);

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function toLogin() {
  location.assign(`/login?next=${encodeURIComponent("/m/" + location.hash)}`);
}

async function api(path, { method = "GET", json, form } = {}) {
  let response;
  try {
    response = await fetch(API + path, {
      method, credentials: "same-origin", cache: "no-store",
      headers: json !== undefined ? { "Content-Type": "application/json" } : {},
      body: json !== undefined ? JSON.stringify(json) : form,
    });
  } catch (error) {
    throw new ApiError(0, "网络不可用，请联网后重试");
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, body.detail || "登录已失效，请重新登录");
  }
  if (!response.ok) throw new ApiError(response.status, body.detail || `请求失败（${response.status}）`);
  return body;
}

/** ``load()``'s answer, kept in localStorage so the page still has it with no network. */
async function remembered(key, load) {
  const storageKey = `gridgov.${state.me ? state.me.id : 0}.${key}`;
  try {
    const value = await load();
    localStorage.setItem(storageKey, JSON.stringify(value));
    return value;
  } catch (error) {
    const kept = localStorage.getItem(storageKey);
    if (error.status === 0 && kept) return JSON.parse(kept);
    throw error;
  }
}

// ------------------------------------------------------------------ routing
const TAB_OF = { report: "report", inbox: "inbox", event: "inbox", patrol: "patrol", visits: "visits",
                 visit: "visits", search: "search", diary: "more", notices: "more", notice: "more",
                 outbox: "more", more: "more" };
const ENTER = {};

function route() {
  const [wanted, argument] = (location.hash.slice(1) || "report").split("/");
  const name = TAB_OF[wanted] ? wanted : "report";
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  const view = $(`#view-${name}`);
  $("#title").textContent = view.dataset.title;
  for (const tab of document.querySelectorAll(".tabs a")) {
    tab.classList.toggle("active", tab.dataset.tab === TAB_OF[name]);
  }
  window.scrollTo(0, 0);
  if (ENTER[name]) ENTER[name](argument);
}

// ------------------------------------------------------------------ position
function currentPosition(options = {}) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new Error("本机浏览器不支持定位"));
      return;
    }
    navigator.geolocation.getCurrentPosition(resolve, reject,
      { enableHighAccuracy: true, timeout: 20_000, maximumAge: 10_000, ...options });
  });
}

function geoError(error) {
  if (error && error.code === 1) return "定位被拒绝：请在浏览器设置中允许本网站使用位置";
  if (error && error.code === 3) return "定位超时：请到开阔处重试，或在地图上选点";
  return "无法定位：请打开手机定位后重试，或在地图上选点";
}

function fixFrom(position) {
  const c = position.coords;
  return { lon: c.longitude, lat: c.latitude, accuracy: Number.isFinite(c.accuracy) ? c.accuracy : null,
           speed: Number.isFinite(c.speed) && c.speed >= 0 ? c.speed : null,
           time: new Date(position.timestamp || Date.now()).toISOString() };
}

async function loadGrids() {
  if (state.grids) return state.grids;
  const scope = state.me.scope_path;
  state.grids = await remembered("grids", async () => {
    // A grid worker's scope is their grid; anyone else sees the grids inside their scope.
    let found = await api(`/ogc/collections/grid/items?limit=200&path=${encodeURIComponent(scope)}`);
    if (!found.features.length) found = await api("/ogc/collections/grid/items?limit=500");
    return found.features.filter((f) => f.properties.path === scope || f.properties.path.startsWith(scope + "."))
      .map((f) => ({ type: "Feature", geometry: f.geometry,
                     properties: { id: f.properties.id, name: f.properties.name, path: f.properties.path } }));
  });
  return state.grids;
}

/** The "where" part of a form: the phone's position with its accuracy, or (withMap) a point tapped on the
 * grid map. ``value()`` is {lon, lat, crs, accuracy} or null. */
function positionPicker(container) {
  const withMap = container.dataset.map === "1";
  let value = null;
  let map = null;
  const where = h("div", { class: "where muted", "data-role": "where" }, "尚未定位");
  const mapBox = h("div", { class: "map", hidden: true });
  const show = () => {
    if (!value) where.textContent = "尚未定位";
    else if (value.crs === "wgs84") {
      where.textContent = `当前位置：${value.lon.toFixed(6)}, ${value.lat.toFixed(6)}（精度 ±${Math.round(value.accuracy ?? 0)} 米）`;
    } else where.textContent = `地图选点：${value.lon.toFixed(6)}, ${value.lat.toFixed(6)}`;
  };
  const locate = async () => {
    where.textContent = "正在定位…";
    try {
      const fix = fixFrom(await currentPosition());
      state.position = fix;
      value = { lon: fix.lon, lat: fix.lat, crs: "wgs84", accuracy: fix.accuracy };
      if (map) { map.showPosition(fix.lon, fix.lat, fix.accuracy); map.clearPick(); }
      show();
    } catch (error) {
      where.textContent = geoError(error);
    }
  };
  const openMap = async () => {
    mapBox.hidden = !mapBox.hidden;
    if (mapBox.hidden || map) return;
    mapBox.textContent = "正在加载网格边界…";
    try {
      // Boundaries are CGCS2000 lon/lat: a tapped point is sent as such.
      map = gridMap(mapBox, await loadGrids(), (p) => {
        value = { lon: p.lon, lat: p.lat, crs: "cgcs2000", accuracy: null };
        show();
      });
      if (map && state.position) map.showPosition(state.position.lon, state.position.lat, state.position.accuracy);
    } catch (error) {
      mapBox.textContent = `无法加载网格边界：${error.message}`;
    }
  };
  const buttons = h("div", { class: "buttons" },
    h("button", { type: "button", onclick: locate }, "获取当前位置"),
    withMap ? h("button", { type: "button", onclick: openMap }, "在地图上选点") : null);
  container.replaceChildren(h("label", {}, "位置"), buttons, where, mapBox);
  return { value: () => value, locate, clear() { value = null; if (map) map.clearPick(); show(); } };
}

// ------------------------------------------------------------------ photos
async function shrink(file) {
  const photo = { name: file.name || "photo.jpg", type: file.type || "image/jpeg", blob: file };
  const convert = !ALLOWED_PHOTO.includes(photo.type);
  if (!convert && (file.size <= SHRINK_ABOVE || photo.type === "image/heic")) return photo;
  // A phone camera's 5 MB photo is sent over a weak network: scale it to 1920 px JPEG.
  try {
    const bitmap = await createImageBitmap(file);
    const ratio = Math.min(1, 1920 / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * ratio);
    canvas.height = Math.round(bitmap.height * ratio);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    if (!blob) return photo;
    return { name: photo.name.replace(/\.[^.]*$/, "") + ".jpg", type: "image/jpeg", blob };
  } catch (error) {
    return photo;
  }
}

function photoPicker(container) {
  const photos = [];
  const input = h("input", { type: "file", accept: "image/*", capture: "environment", multiple: true,
                             hidden: true, "aria-label": "现场照片" });
  const add = h("button", { type: "button", class: "add-photo", onclick: () => input.click() }, "拍照 / 选择照片");
  const thumbs = h("div", { class: "thumbs" });
  const draw = () => {
    add.textContent = photos.length ? `继续拍照（已选 ${photos.length} 张）` : "拍照 / 选择照片";
    thumbs.replaceChildren(...photos.map((photo, index) => {
      const url = URL.createObjectURL(photo.blob);
      return h("figure", {},
        h("img", { src: url, alt: `照片 ${index + 1}` }),
        h("button", { type: "button", "aria-label": `删除照片 ${index + 1}`,
                      onclick: () => { URL.revokeObjectURL(url); photos.splice(index, 1); draw(); } }, "×"));
    }));
  };
  input.addEventListener("change", async () => {
    for (const file of input.files) photos.push(await shrink(file));
    input.value = "";
    draw();
  });
  container.replaceChildren(h("label", {}, "现场照片"), add, input, thumbs);
  return { photos: () => photos.slice(), clear() { photos.length = 0; draw(); } };
}

// ------------------------------------------------------------------ outbox
async function refreshOutbox() {
  if (!state.me) return;
  const items = await listItems(state.me.id);
  const count = items.length;
  $("#outbox-count").textContent = String(count);
  $("#outbox-chip").hidden = count === 0;
  const badge = $("#more-outbox-badge");
  badge.textContent = String(count);
  badge.hidden = count === 0;
  updateMoreBadge();
  if (!$("#view-outbox").hidden) drawOutbox(items);
}

function onSent(item, answer) {
  state.answers.set(item.id, answer);
  if (item.kind === "visit" && !$("#view-visits").hidden) ENTER.visits();
}

async function sendOutbox() {
  if (!state.me || !navigator.onLine) return null;
  const outcome = await flush(state.me.id, onSent);
  if (outcome.needLogin) banner("登录已失效：请重新登录，待发送的内容会在登录后自动发送", true);
  await refreshOutbox();
  return outcome;
}

/** Queue ``request`` and try to send it now; says what happened in a toast. */
async function submit(request, done) {
  const item = await enqueue({ user: state.me.id, ...request });
  await refreshOutbox();
  await sendOutbox();
  const left = await getItem(item.id);
  if (!left) {
    const answer = state.answers.get(item.id) || {};
    toast(done(answer));
    return true;
  }
  if (left.failed) toast(`发送失败：${left.error}`, true);
  else toast("网络不可用，已保存在本机，联网后自动发送");
  return false;
}

const KIND_NAMES = { event: "事件上报", positions: "巡查定位", diary: "民情日记", visit: "走访记录" };

function drawOutbox(items) {
  const list = $("#outbox-list");
  if (!items.length) { list.replaceChildren(empty("没有待发送的内容")); return; }
  list.replaceChildren(...items.map((item) => h("li", { class: item.failed ? "failed" : "" },
    h("div", { class: "head" }, h("span", { class: "name" }, item.label || KIND_NAMES[item.kind]),
      h("span", { class: item.failed ? "tag red" : "tag" }, item.failed ? "发送失败" : "待发送")),
    h("div", { class: "meta" }, `${KIND_NAMES[item.kind] || item.kind} · ${when(item.created)}`
      + (item.photos && item.photos.length ? ` · 照片 ${item.photos.length} 张` : "")),
    item.error ? h("div", { class: "meta" }, item.error) : null,
    item.failed ? h("div", { class: "tools" },
      h("button", { type: "button", onclick: async () => {
        item.failed = false; item.error = null; await putItem(item); await sendOutbox(); } }, "重试"),
      h("button", { type: "button", onclick: async () => {
        if (confirm("删除后这条内容不会再发送，确定删除？")) { await removeItem(item.id); refreshOutbox(); } } }, "删除"))
      : null)));
}

ENTER.outbox = async () => drawOutbox(await listItems(state.me.id));

// ------------------------------------------------------------------ 上报事件
let report = null;

function typeName(code) {
  const item = (state.meta ? state.meta.codes.event_type : []).find((t) => t.code === code);
  return item ? item.name_zh : "事件";
}

async function loadMeta() {
  state.meta = await remembered("events-meta", () => api("/events/meta"));
  const select = $("#report-type");
  const types = state.meta.codes.event_type;
  const groups = types.filter((t) => t.code.length === 2);
  select.replaceChildren(h("option", { value: "" }, "请选择事件类型"),
    ...groups.map((g) => h("optgroup", { label: g.name_zh },
      ...types.filter((t) => t.code.length > 2 && t.code.startsWith(g.code))
        .map((t) => h("option", { value: t.code }, t.name_zh)))));
}

function setupReport() {
  const form = $("#report-form");
  report = { photos: photoPicker($("[data-photos=report]")), position: positionPicker($("[data-position=report]")),
             located: false };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const type = form.elements.type.value;
    if (!type) { toast("请选择事件类型", true); return; }
    const content = form.elements.content.value.trim();
    const where = report.position.value();
    if (!where) { toast("请获取当前位置，或在地图上选点", true); return; }
    const title = form.elements.title.value.trim() || `${typeName(type)}${content ? "：" + content.slice(0, 30) : ""}`;
    const id = uuid();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const sent = await submit({
        id, kind: "event", label: title, url: `${API}/events`, photos: report.photos.photos(),
        fields: { title, type, content, urgency: form.elements.urgency.value, source: "app", lon: where.lon, lat: where.lat,
                  crs: where.crs, client_id: id },
      }, (answer) => `已上报${answer.number ? "，编号 " + answer.number : ""}`);
      form.reset();
      report.photos.clear();
      if (sent) refreshInboxBadge();
    } finally {
      button.disabled = false;
    }
  });
}

ENTER.report = () => {
  if (!report.located && report.position) { report.located = true; report.position.locate(); }
};

// ------------------------------------------------------------------ 我的待办
const LIGHTS = { green: "绿灯", yellow: "黄灯", red: "红灯" };

async function refreshInboxBadge(count) {
  try {
    const total = count ?? (await api("/events/inbox?limit=1")).total;
    $("#inbox-badge").textContent = String(total);
    $("#inbox-badge").hidden = !total;
  } catch (error) { /* offline: keep the last count */ }
}

ENTER.inbox = async () => {
  const list = $("#inbox-list");
  list.replaceChildren(empty("正在加载…"));
  try {
    const box = await api("/events/inbox");
    refreshInboxBadge(box.total);
    $("#inbox-counts").textContent = `共 ${box.total} 件` + (box.counts.red ? `，红灯 ${box.counts.red} 件` : "")
      + (box.counts.yellow ? `，黄灯 ${box.counts.yellow} 件` : "");
    if (!box.items.length) { list.replaceChildren(empty("没有待办事件")); return; }
    list.replaceChildren(...box.items.map((e) => h("li", {
      class: "tap", role: "button", tabindex: "0", "data-event": e.id,
      onclick: () => { location.hash = `#event/${e.id}`; } },
      h("div", { class: "head" },
        h("span", { class: "name" }, h("i", { class: `light ${e.light || ""}`, title: LIGHTS[e.light] || "" }), e.title),
        h("span", { class: "tag" }, e.status_name)),
      h("div", { class: "meta" }, `${e.number} · ${e.type_name || e.type}`),
      h("div", { class: "meta" }, (e.due_at ? `时限 ${when(e.due_at)}` : "无时限")
        + (e.overdue ? " · 已超时" : "") + ` · 待办：${e.actions.map((a) => a.name).join("、")}`))));
  } catch (error) {
    list.replaceChildren(empty(error.status === 0 ? "离线：待办需联网查看" : error.message));
  }
};

const REQUIRED_LABELS = { comment: "意见", department: "承办部门", days: "延期天数", outcome: "核查结果",
                          satisfaction: "满意度", color: "牌色", attachment: "照片" };

async function drawEvent(id) {
  const detail = $("#event-detail");
  const actions = $("#event-actions");
  const form = $("#action-form");
  form.hidden = true;
  actions.replaceChildren();
  detail.replaceChildren(h("p", { class: "muted" }, "正在加载…"));
  let event, allowed;
  try {
    [event, allowed] = await Promise.all([api(`/events/${id}`), api(`/events/${id}/actions`)]);
  } catch (error) {
    detail.replaceChildren(h("p", { class: "banner error" }, error.status === 0 ? "离线：事件详情需联网查看" : error.message));
    return;
  }
  const facts = [["编号", event.number], ["类型", event.type_name || event.type], ["状态", event.status_name],
                 ["承办", event.holder_name], ["时限", event.due_at ? when(event.due_at) : "—"],
                 ["地址", event.address || event.grid_name || "—"], ["上报", when(event.reported_at)],
                 ["描述", event.content || "—"]];
  detail.replaceChildren(h("div", { class: "card-static" },
    h("h2", { class: "section" }, event.title),
    h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    event.attachments.length ? h("div", { class: "photos" }, h("div", { class: "thumbs" },
      ...event.attachments.filter((a) => a.content_type.startsWith("image/")).map((a) => h("figure", {},
        h("img", { src: `${API}/events/${id}/attachments/${a.id}`, alt: a.filename, loading: "lazy" }))))) : null,
    h("ol", { class: "history" }, ...event.history.map((row) => h("li", {},
      `${when(row.at)} ${row.user_name || ""} ${row.action_name}` + (row.comment ? `：${row.comment}` : ""))))));
  if (!allowed.length) { actions.replaceChildren(h("p", { class: "muted" }, "您现在对该事件没有可执行的操作")); return; }
  actions.replaceChildren(...allowed.map((a) => h("button", { type: "button",
    onclick: () => actionForm(event, a) }, a.name)));
}

function actionForm(event, action) {
  const form = $("#action-form");
  const needs = new Set(action.requires);
  const departments = state.meta ? state.meta.codes.department : [];
  const photos = h("div", { class: "photos" });
  const parts = [h("h2", { class: "section" }, action.name)];
  if (needs.has("department")) {
    parts.push(h("label", { for: "act-department" }, "承办部门"),
      h("select", { id: "act-department", name: "department", required: true },
        h("option", { value: "" }, "请选择"), ...departments.map((d) => h("option", { value: d.code }, d.name_zh))));
  }
  if (needs.has("days")) {
    parts.push(h("label", { for: "act-days" }, "延期工作日数"),
      h("input", { id: "act-days", name: "days", type: "number", min: "1", max: "60", inputmode: "numeric", required: true }));
  }
  const choice = (name, legend, options) => h("fieldset", { class: "segmented" }, h("legend", {}, legend),
    ...options.map(([value, label], i) => h("label", {},
      h("input", { type: "radio", name, value, checked: i === 0 }), h("span", {}, label))));
  if (needs.has("outcome")) parts.push(choice("outcome", "核查结果", [["pass", "通过"], ["fail", "不通过"]]));
  if (needs.has("satisfaction")) {
    parts.push(choice("satisfaction", "满意度", [["5", "5 很满意"], ["4", "4"], ["3", "3"], ["2", "2"], ["1", "1 不满意"]]));
  }
  if (needs.has("color")) parts.push(choice("color", "牌色", [["yellow", "黄牌"], ["red", "红牌"]]));
  parts.push(h("label", { for: "act-comment" }, needs.has("comment") ? "意见（必填）" : "意见（可不填）"),
    h("textarea", { id: "act-comment", name: "comment", rows: "3", maxlength: "2000" }), photos,
    h("button", { type: "submit", class: "primary" }, `确认${action.name}`));
  form.replaceChildren(...parts);
  const picker = photoPicker(photos);
  form.hidden = false;
  form.onsubmit = async (submitEvent) => {
    submitEvent.preventDefault();
    const comment = form.elements.comment.value.trim();
    if (needs.has("comment") && !comment) { toast("请填写意见", true); return; }
    if (needs.has("attachment") && !picker.photos().length) { toast("请拍照上传处理结果", true); return; }
    const body = { action: action.action, version: event.version, comment: comment || null };
    if (needs.has("department")) body.department = form.elements.department.value || null;
    if (needs.has("days")) body.days = Number(form.elements.days.value) || null;
    if (needs.has("outcome")) body.outcome = form.elements.outcome.value;
    if (needs.has("satisfaction")) body.satisfaction = Number(form.elements.satisfaction.value);
    if (needs.has("color")) body.color = form.elements.color.value;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      if (picker.photos().length) {
        const files = new FormData();
        for (const p of picker.photos()) files.append("files", p.blob, p.name);
        body.attachment_ids = (await api(`/events/${event.id}/attachments`, { method: "POST", form: files }))
          .map((a) => a.id);
      }
      const after = await api(`/events/${event.id}/actions`, { method: "POST", json: body });
      toast(`已${action.name}：事件现为「${after.status_name}」`);
      location.hash = "#inbox";
    } catch (error) {
      if (error.status === 409) {
        toast(`操作未执行：${error.message}。已刷新为最新状态，请重新确认。`, true);
        drawEvent(event.id);
      } else if (error.status === 0) {
        toast("处理事件需要联网，请联网后再操作", true);
      } else {
        toast(`操作未执行：${error.message}`, true);
      }
    } finally {
      button.disabled = false;
    }
  };
  form.scrollIntoView({ behavior: "smooth", block: "start" });
}

ENTER.event = (id) => { if (/^\d+$/.test(id || "")) drawEvent(id); else location.hash = "#inbox"; };

// ------------------------------------------------------------------ 巡查
const patrol = { watch: null, buffer: [], count: 0, started: null, clock: null, lastBatch: 0, lastTime: null,
                 wakeLock: null };

function drawPatrol() {
  const on = patrol.watch !== null;
  $("#patrol-status").textContent = on ? "巡查中" : "未开始巡查";
  $("#patrol-status").classList.toggle("on", on);
  const button = $("#patrol-toggle");
  button.textContent = on ? "结束巡查" : "开始巡查";
  button.classList.toggle("stop", on);
  $("#patrol-fixes").textContent = String(patrol.count);
  $("#patrol-buffer").textContent = String(patrol.buffer.length);
  const seconds = on ? Math.floor((Date.now() - patrol.started) / 1000) : 0;
  $("#patrol-time").textContent = `${String(Math.floor(seconds / 60)).padStart(2, "0")}:${String(seconds % 60).padStart(2, "0")}`;
}

async function batchFixes() {
  if (!patrol.buffer.length) return;
  const fixes = patrol.buffer.splice(0);
  patrol.lastBatch = Date.now();
  drawPatrol();
  await enqueue({ kind: "positions", label: `巡查定位 ${fixes.length} 个点`, url: `${API}/positions`,
                  user: state.me.id, json: { crs: "wgs84", fixes } });
  await refreshOutbox();
  sendOutbox();
}

function onFix(position) {
  const fix = fixFrom(position);
  state.position = fix;
  if (fix.time === patrol.lastTime) return;  // the same fix delivered twice
  patrol.lastTime = fix.time;
  patrol.buffer.push(fix);
  patrol.count += 1;
  $("#patrol-accuracy").textContent = fix.accuracy !== null ? `±${Math.round(fix.accuracy)}米` : "—";
  drawPatrol();
  if (patrol.buffer.length >= BATCH_FIXES) batchFixes();
}

async function startPatrol() {
  if (!navigator.geolocation) { toast("本机浏览器不支持定位，无法巡查", true); return; }
  patrol.started = Date.now();
  patrol.lastBatch = Date.now();
  patrol.count = 0;
  patrol.watch = navigator.geolocation.watchPosition(onFix,
    (error) => toast(geoError(error), true), { enableHighAccuracy: true, maximumAge: 0, timeout: 60_000 });
  patrol.clock = setInterval(() => {
    drawPatrol();
    if (Date.now() - patrol.lastBatch >= BATCH_MS) batchFixes();
  }, 1000);
  localStorage.setItem(`gridgov.${state.me.id}.patrolling`, "1");
  try { patrol.wakeLock = navigator.wakeLock ? await navigator.wakeLock.request("screen") : null; } catch (e) { /* optional */ }
  drawPatrol();
}

async function stopPatrol() {
  if (patrol.watch !== null) navigator.geolocation.clearWatch(patrol.watch);
  patrol.watch = null;
  clearInterval(patrol.clock);
  localStorage.removeItem(`gridgov.${state.me.id}.patrolling`);
  if (patrol.wakeLock) { patrol.wakeLock.release().catch(() => {}); patrol.wakeLock = null; }
  drawPatrol();
  await batchFixes();
  toast(`巡查结束，共记录 ${patrol.count} 个定位点`);
}

function setupPatrol() {
  $("#patrol-toggle").addEventListener("click", () => (patrol.watch === null ? startPatrol() : stopPatrol()));
  // Leaving the page: what is buffered goes to the outbox (kept even if the page is killed).
  document.addEventListener("visibilitychange", () => { if (document.hidden) batchFixes(); });
  if (localStorage.getItem(`gridgov.${state.me.id}.patrolling`)) startPatrol();
}

// ------------------------------------------------------------------ 走访
function showOverdue(overdue) {
  $("#visits-badge").textContent = String(overdue || 0);
  $("#visits-badge").hidden = !overdue;
}

async function refreshVisitsBadge() {
  try { showOverdue((await api("/visits/due")).overdue); } catch (error) { /* offline or not offered */ }
}

ENTER.visits = async () => {
  const list = $("#visits-list");
  list.replaceChildren(empty("正在加载…"));
  let where = state.position;
  if (!where) {
    try { where = fixFrom(await currentPosition({ timeout: 5000, maximumAge: 120_000 })); state.position = where; } catch (e) { /* without distance */ }
  }
  const query = where ? `?lon=${where.lon}&lat=${where.lat}&crs=wgs84` : "";
  try {
    const due = await remembered("visits-due", () => api(`/visits/due${query}`));
    $("#visits-summary").textContent = `应走访 ${due.items.length} 人` + (due.overdue ? `，逾期 ${due.overdue} 人` : "");
    showOverdue(due.overdue);
    if (!due.items.length) { list.replaceChildren(empty("暂无应走访对象")); return; }
    list.replaceChildren(...due.items.map((v) => h("li", { class: "tap", role: "button", tabindex: "0",
      onclick: () => { state.visitTarget = v; location.hash = "#visit"; } },
      h("div", { class: "head" }, h("span", { class: "name" }, v.name),
        v.overdue_days > 0 ? h("span", { class: "tag red" }, `逾期 ${v.overdue_days} 天`)
          : h("span", { class: "tag" }, `${v.due_on} 前`)),
      h("div", { class: "meta" }, `${v.registry_zh} · ${v.address || "—"}`
        + (v.distance_m !== null && v.distance_m !== undefined ? ` · 约 ${Math.round(v.distance_m)} 米` : "")),
      h("div", { class: "meta" }, v.last_visited_on ? `上次走访 ${v.last_visited_on}` : "尚无走访记录"))));
  } catch (error) {
    list.replaceChildren(empty(error.status === 404 ? "走访功能尚未开通" : error.status === 0 ? "离线：走访名单需联网获取" : error.message));
  }
};

let visit = null;

function setupVisit() {
  const form = $("#visit-form");
  visit = { photos: photoPicker($("[data-photos=visit]")), position: positionPicker($("[data-position=visit]")) };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = state.visitTarget;
    const content = form.elements.content.value.trim();
    if (!content) { toast("请填写帮扶情况", true); return; }
    const where = visit.position.value() || {};
    const id = uuid();
    await submit({
      id, kind: "visit", label: `走访 ${target.name}`, url: `${API}/visits`, photos: visit.photos.photos(),
      // Today is left to the server (its date decides what "today" is; a phone's clock may run ahead).
      fields: { registry: target.registry, record_id: target.record_id,
                visited_on: form.elements.visited_on.value === today() ? null : form.elements.visited_on.value,
                content, lon: where.lon, lat: where.lat, crs: where.crs, client_id: id },
    }, (answer) => `走访已记录${answer.next_due ? "，下次走访 " + answer.next_due : ""}`);
    form.reset();
    visit.photos.clear();
    location.hash = "#visits";
  });
}

ENTER.visit = () => {
  const target = state.visitTarget;
  if (!target) { location.hash = "#visits"; return; }
  $("#visit-target").replaceChildren(h("div", { class: "name" }, `${target.name}（${target.registry_zh}）`),
    h("div", { class: "meta" }, target.address || ""));
  $("#visit-date").value = today();
  visit.position.locate();
};

// ------------------------------------------------------------------ 查询
const SEX = { 1: "男", 2: "女", 0: "未知", 9: "未说明" };
const ID_NUMBER = /^(\d{15}|\d{17}[\dXx])$/;

function setupSearch() {
  const form = $("#search-form");
  const field = $("#search-field");
  const sync = () => {
    const houses = form.elements.kind.value === "houses";
    field.hidden = !houses;
    $("#search-field-label").hidden = !houses;
    $("#search-label").textContent = houses ? "关键词" : "姓名或身份证号";
    $("#search-q").placeholder = houses ? "输入楼栋名称、房号或户主姓名" : "输入完整身份证号精确查找";
  };
  for (const radio of form.elements.kind) radio.addEventListener("change", sync);
  // No OCR offline: the photo of the card is shown beside the box so the number can be typed off it.
  $("#search-scan").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const preview = $("#search-scan-preview");
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    $("#search-q").focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = form.elements.q.value.trim();
    const results = $("#search-results");
    const summary = $("#search-summary");
    if (!q) { toast("请输入查询内容", true); return; }
    results.replaceChildren(empty("正在查询…"));
    summary.textContent = "";
    try {
      if (form.elements.kind.value === "people") {
        const exact = ID_NUMBER.test(q);
        const param = exact ? `id_number=${encodeURIComponent(q.toUpperCase())}` : `name=${encodeURIComponent(q)}`;
        const page = await api(`/people?${param}&limit=30`);
        summary.textContent = exact ? `身份证号精确匹配：${page.total} 人` : `共 ${page.total} 人`;
        results.replaceChildren(...(page.items.length ? page.items.map((p) => h("li", {},
          h("div", { class: "head" }, h("span", { class: "name" }, p.name),
            h("span", { class: "tag" }, `${SEX[p.sex] || ""} ${p.birth_date || ""}`)),
          h("div", { class: "meta" }, `身份证 ${p.id_number || "—"} · 电话 ${p.phone || "—"}`),
          h("div", { class: "meta" }, p.address || "—"),
          p.died_on ? h("div", { class: "meta" }, `已于 ${p.died_on} 死亡`) : null))
          : [empty("本网格内没有找到")]));
      } else {
        const page = await api(`/registries/house?${field.value}=${encodeURIComponent(q)}&limit=30`);
        summary.textContent = `共 ${page.total} 套`;
        results.replaceChildren(...(page.items.length ? page.items.map((house) => h("li", {},
          h("div", { class: "head" },
            h("span", { class: "name" }, [house.compound_name, house.building_name,
                                          house.unit_no && `${house.unit_no}单元`, house.room_no].filter(Boolean).join(" ")),
            house.is_rented ? h("span", { class: "tag" }, "出租") : null),
          h("div", { class: "meta" }, `房主 ${house.owner_name || "—"}` + (house.owner_phone ? ` · ${house.owner_phone}` : "")),
          house.occupants ? h("div", { class: "meta" }, `现居住：${house.occupants}`) : null))
          : [empty("本网格内没有找到")]));
      }
    } catch (error) {
      results.replaceChildren(empty(error.status === 0 ? "离线：查询需联网" : error.message));
    }
  });
}

// ------------------------------------------------------------------ 民情日记
const DIARY_STATES = { submitted: "待审批", approved: "已通过", returned: "已退回" };
let diary = null;

function chooser(input, finder, hits, tags, search, label) {
  const chosen = new Map();
  const draw = () => tags.replaceChildren(...[...chosen].map(([id, name]) => h("button", { type: "button",
    "aria-label": `移除 ${name}`, onclick: () => { chosen.delete(id); draw(); } }, `${name} ×`)));
  finder.addEventListener("click", async () => {
    const q = input.value.trim();
    if (!q) return;
    try {
      const found = await search(q);
      hits.replaceChildren(...(found.length ? found.map((item) => h("li", { onclick: () => {
        chosen.set(item.id, label(item)); hits.replaceChildren(); input.value = ""; draw(); } }, label(item)))
        : [h("li", { class: "muted" }, "没有找到")]));
    } catch (error) {
      hits.replaceChildren(h("li", { class: "muted" }, error.status === 0 ? "离线：请稍后添加" : error.message));
    }
  });
  return { ids: () => [...chosen.keys()].join(","), clear() { chosen.clear(); draw(); } };
}

function setupDiary() {
  const form = $("#diary-form");
  diary = {
    photos: photoPicker($("[data-photos=diary]")),
    position: positionPicker($("[data-position=diary]")),
    people: chooser($("#diary-person-q"), $("#diary-person-find"), $("#diary-person-hits"), $("#diary-people"),
      async (q) => (await api(`/people?name=${encodeURIComponent(q)}&limit=10`)).items,
      (p) => `${p.name}${p.address ? "（" + p.address + "）" : ""}`),
    houses: chooser($("#diary-house-q"), $("#diary-house-find"), $("#diary-house-hits"), $("#diary-houses"),
      async (q) => {
        const field = /^\d+$/.test(q) ? "room_no" : "building_name";
        return (await api(`/registries/house?${field}=${encodeURIComponent(q)}&limit=10`)).items;
      },
      (house) => [house.building_name, house.room_no].filter(Boolean).join(" ")),
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = form.elements.content.value.trim();
    if (!content) { toast("请填写今日民情", true); return; }
    const where = diary.position.value() || {};
    const id = uuid();
    await submit({
      id, kind: "diary", label: `民情日记 ${form.elements.diary_date.value}`, url: `${API}/diary`, photos: diary.photos.photos(),
      fields: { diary_date: form.elements.diary_date.value, content, visited_person_ids: diary.people.ids(),
                visited_house_ids: diary.houses.ids(), lon: where.lon, lat: where.lat, crs: where.crs, client_id: id },
    }, () => "日记已保存");
    form.reset();
    $("#diary-date").value = today();
    diary.photos.clear(); diary.people.clear(); diary.houses.clear();
    drawDiaries();
  });
}

async function drawDiaries() {
  const list = $("#diary-list");
  try {
    const page = await remembered("diary", () => api("/diary?worker=me"));
    if (!page.items.length) { list.replaceChildren(empty("还没有日记")); return; }
    list.replaceChildren(...page.items.map((d) => h("li", { "data-diary": d.id },
      h("div", { class: "head" }, h("span", { class: "name" }, d.diary_date),
        h("span", { class: d.state === "returned" ? "tag red" : d.state === "approved" ? "tag green" : "tag" },
          d.state_name || DIARY_STATES[d.state] || d.state)),
      h("div", {}, d.content),
      d.visited ? h("div", { class: "meta" }, `走访：${d.visited}`) : null,
      (d.photos || []).length ? h("div", { class: "photos" }, h("div", { class: "thumbs" },
        ...d.photos.map((p) => h("figure", {}, h("img", { src: p.url, alt: p.filename, loading: "lazy" }))))) : null,
      d.review_note ? h("div", { class: "meta" }, `审核意见：${d.review_note}`) : null,
      (d.comments || []).length ? h("ul", { class: "comments" }, ...d.comments.map((c) =>
        h("li", {}, `${c.by}（${when(c.at)}）点评：${c.text}`))) : null,
      d.state === "returned" ? h("div", { class: "tools" },
        h("button", { type: "button", onclick: (event) => reviseDiary(event.target.closest("li"), d) }, "修改后重新提交"))
        : null)));
  } catch (error) {
    list.replaceChildren(empty(error.status === 404 ? "民情日记功能尚未开通" : error.status === 0 ? "离线：日记列表需联网查看" : error.message));
  }
}

/** A returned entry, corrected in place and sent back for review (online: it is checked against its version). */
function reviseDiary(item, entry) {
  const box = h("textarea", { rows: "5", maxlength: "5000", "aria-label": "修改日记内容" });
  box.value = entry.content;
  const save = h("button", { type: "button", class: "primary", onclick: async () => {
    const content = box.value.trim();
    if (!content) { toast("请填写日记内容", true); return; }
    save.disabled = true;
    try {
      await api(`/diary/${entry.id}`, { method: "PUT", json: { version: entry.version, content } });
      toast("已重新提交审核");
      drawDiaries();
    } catch (error) {
      toast(error.status === 0 ? "重新提交需要联网" : `未能提交：${error.message}`, true);
      save.disabled = false;
    }
  } }, "重新提交");
  item.querySelector(".tools").replaceWith(h("div", {}, box, save));
  box.focus();
}

ENTER.diary = () => {
  if (!$("#diary-date").value) $("#diary-date").value = today();
  drawDiaries();
};

// ------------------------------------------------------------------ 通知
function updateMoreBadge() {
  const notices = !$("#notice-badge").hidden;
  const outbox = !$("#more-outbox-badge").hidden;
  $("#more-badge").hidden = !(notices || outbox);
}

async function pollNotices() {
  if (state.noticesOff || !navigator.onLine) return;
  try {
    const { unread } = await api("/notices/unread-count");
    for (const badge of [$("#notice-badge"), $("#more-notice-badge")]) {
      badge.textContent = unread > 99 ? "99+" : String(unread);
      badge.hidden = !unread;
    }
    updateMoreBadge();
  } catch (error) {
    if (error.status === 404) { state.noticesOff = true; $("#bell").hidden = true; }
  }
}

ENTER.notices = async () => {
  const list = $("#notice-list");
  list.replaceChildren(empty("正在加载…"));
  try {
    const box = await api("/notices/inbox");
    if (!box.items.length) { list.replaceChildren(empty("没有通知")); return; }
    list.replaceChildren(...box.items.map((n) => h("li", { class: `tap ${n.read_at ? "" : "unread"}`, role: "button",
      tabindex: "0", onclick: () => { location.hash = `#notice/${n.id}`; } },
      h("div", { class: "head" }, h("span", { class: "name" }, n.title), h("span", { class: "tag" }, n.notice_type_zh)),
      h("div", { class: "meta" }, `${n.sender || ""} · ${when(n.sent_at)}${n.read_at ? "" : " · 未读"}`))));
  } catch (error) {
    list.replaceChildren(empty(error.status === 404 ? "通知功能尚未开通" : error.status === 0 ? "离线：通知需联网查看" : error.message));
  }
};

ENTER.notice = async (id) => {
  const box = $("#notice-detail");
  if (!/^\d+$/.test(id || "")) { location.hash = "#notices"; return; }
  box.replaceChildren(h("p", { class: "muted" }, "正在加载…"));
  try {
    const n = await api(`/notices/${id}`);  // opening it marks it read
    const text = n.body ?? "";
    const files = n.attachments || [];
    box.replaceChildren(h("div", { class: "card-static" },
      h("h2", { class: "section" }, n.title),
      h("div", { class: "meta muted" }, [n.notice_type_zh, n.doc_no, n.issuing_office, n.sender, when(n.sent_at)]
        .filter(Boolean).join(" · ")),
      h("div", { style: "white-space: pre-wrap; margin-top: 12px" }, text),
      files.length ? h("ul", {}, ...files.map((f) => h("li", {}, h("a", { href: f.url }, `附件：${f.file_name}`)))) : null));
    pollNotices();
  } catch (error) {
    box.replaceChildren(h("p", { class: "banner error" }, error.status === 0 ? "离线：通知需联网查看" : error.message));
  }
};

// ------------------------------------------------------------------ 更多
ENTER.more = async () => {
  const me = state.me;
  const where = h("div", { class: "meta" }, `账号 ${me.username} · 辖区 ${me.scope_path}`);
  $("#me").replaceChildren(h("div", { class: "name" }, `${me.name}（${me.role_name}）`), where);
  try {
    const unit = await remembered("unit", () => api("/territory/summary"));
    where.textContent = `账号 ${me.username} · 辖区 ${unit.name}`;
  } catch (error) { /* the path says it too */ }
};

function setupMore() {
  $("#logout").addEventListener("click", async () => {
    const waiting = (await listItems(state.me.id)).length;
    if (waiting && !confirm(`还有 ${waiting} 条内容待发送，退出后需同一账号登录才会发送。确定退出？`)) return;
    try { await api("/auth/logout", { method: "POST" }); } catch (error) { /* leaving anyway */ }
    // What was kept for offline use (who is due a visit, the diary) does not stay on a shared phone.
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith(`gridgov.${state.me.id}.`) || key === "gridgov.me") localStorage.removeItem(key);
    }
    location.assign("/login?next=/m/");
  });
  $("#outbox-send").addEventListener("click", async () => {
    if (!navigator.onLine) { toast("当前没有网络，联网后会自动发送", true); return; }
    const outcome = await sendOutbox();
    if (outcome) toast(outcome.sent ? `已发送 ${outcome.sent} 条` : "没有发出：请检查网络");
  });
  $("#inbox-refresh").addEventListener("click", () => ENTER.inbox());
  $("#visits-refresh").addEventListener("click", () => { state.position = null; ENTER.visits(); });
  for (const back of document.querySelectorAll("[data-back]")) {
    back.addEventListener("click", () => { location.hash = back.dataset.back; });
  }
}

// ------------------------------------------------------------------ start
function showNetwork() {
  $("#net").hidden = navigator.onLine;
}

async function whoAmI() {
  try {
    state.me = await api("/auth/me");
    localStorage.setItem("gridgov.me", JSON.stringify(state.me));
  } catch (error) {
    if (error.status === 401) return false;
    // No network: the last login on this phone (the queue waits for the same user's session).
    state.me = JSON.parse(localStorage.getItem("gridgov.me") || "null");
  }
  return Boolean(state.me);
}

async function start() {
  showNetwork();
  if (!(await whoAmI())) {
    if (!navigator.onLine) banner("没有网络，且本机没有登录记录：请联网后登录", true);
    return;
  }
  if (state.me.must_change_password) banner("您的密码为初始密码或已过期，请先在电脑端修改密码后再使用", true);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch(() => { /* http on a LAN: no offline shell */ });
  }
  setupReport();
  setupPatrol();
  setupVisit();
  setupSearch();
  setupDiary();
  setupMore();
  try { await loadMeta(); } catch (error) { toast(`无法加载事件类型：${error.message}`, true); }
  window.addEventListener("hashchange", route);
  window.addEventListener("online", () => { showNetwork(); sendOutbox(); pollNotices(); });
  window.addEventListener("offline", showNetwork);
  route();
  await refreshOutbox();
  sendOutbox();
  refreshInboxBadge();
  refreshVisitsBadge();
  pollNotices();
  setInterval(async () => {
    if (navigator.onLine && (await listItems(state.me.id)).some((item) => !item.failed)) sendOutbox();
  }, RETRY_MS);
  setInterval(pollNotices, NOTICE_POLL_MS);
  document.body.dataset.ready = "1";
}

start();
