// Service worker: the whole page is cached at install, so the pass shows with no network.
// The API (enrolment) always goes to the network.
const CACHE = 'clinic-wallet-v1'
// precache.json: every file the page needs, listed by the server (`kiosk issuer serve`)

self.addEventListener('install', (event) => {
  event.waitUntil(fetch('precache.json', { cache: 'no-store' })
    .then((r) => r.json())
    .then((files) => caches.open(CACHE).then((c) => c.addAll(files)))
    .then(() => self.skipWaiting()))
})

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()))
})

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url)
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.includes('/api/')) return
  event.respondWith(caches.match(event.request, { ignoreSearch: true }).then((hit) => hit || fetch(event.request)))
})
