// The phone page's service worker: keeps the page shell so /m/ opens with no network after the first
// visit. Shell files are fetched from the network first (a new release shows at once when online) and
// fall back to the cache; API calls are not touched — the page itself queues what it could not send.
const VERSION = "__VERSION__";
const CACHE = `gridgov-phone-${VERSION}`;
const SHELL = ["/m/", "/m/static/app.js", "/m/static/outbox.js", "/m/static/map.js", "/m/static/app.css",
               "/m/static/manifest.webmanifest", "/m/static/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("gridgov-phone-") && k !== CACHE)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  const key = request.mode === "navigate" ? "/m/" : (SHELL.includes(url.pathname) ? url.pathname : null);
  if (!key) return;
  event.respondWith(fetch(request).then((response) => {
    if (response.ok && response.type === "basic" && !response.redirected) {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(key, copy));
    }
    return response;
  }).catch(() => caches.match(key).then((cached) => cached || Response.error())));
});
