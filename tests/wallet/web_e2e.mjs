// Drives the web wallet in Debian's Chromium with playwright-core (no browser download):
// enrol over the one-time link, go offline, reload, show the QR; a copied page with another
// key; a consent receipt added from a kiosk link. Writes screenshots, prints a JSON summary.
// Input (JSON in argv[2]): {playwright, chromium, base, enrolLink, receiptLink, out}
import { writeFileSync } from 'node:fs'

const cfg = JSON.parse(process.argv[2])
const { chromium } = await import(cfg.playwright)
const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--ignore-certificate-errors']
})
const result = {}
const phone = { viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, ignoreHTTPSErrors: true, locale: 'en-US' }
const shot = async (page, name) => page.screenshot({ path: `${cfg.out}/${name}.png`, fullPage: true })
const ready = (page) => page.waitForSelector('body[data-ready="true"]', { timeout: 20000 })

try {
  // --- the patient's phone: enrol
  const ctxA = await browser.newContext(phone)
  const a = await ctxA.newPage()
  a.on('pageerror', (e) => { result.pageErrors = [...(result.pageErrors || []), String(e)] })
  a.on('console', (m) => { if (m.type() === 'error') result.console = [...(result.console || []), m.text()] })
  await a.goto(cfg.enrolLink)
  await ready(a)
  await shot(a, 'wallet-enrol')
  await a.click('#enrol')
  await a.waitForSelector('#confirm, #status.bad', { timeout: 20000 })
  if (await a.$('#status.bad')) throw new Error(`enrolment failed: ${await a.textContent('#status')}`)
  result.confirm = (await a.textContent('#confirm')).trim()
  result.urlAfterEnrol = a.url()
  await shot(a, 'wallet-enrolled')
  // the service worker has cached the page before we go offline
  await a.evaluate(async () => {
    await navigator.serviceWorker.ready
    for (let i = 0; i < 100 && !(await caches.has('clinic-wallet-v1')); i++) await new Promise((r) => setTimeout(r, 100))
  })
  result.keyExtractable = await a.evaluate(async () => {
    const { load } = await import('./store.js')
    return (await load()).pair.privateKey.extractable
  })
  // --- offline: reload, the QR still shows
  await ctxA.setOffline(true)
  await a.goto(cfg.base)
  await ready(a)
  await a.waitForSelector('#qr svg', { timeout: 20000 })
  await (await a.$('#qr')).screenshot({ path: `${cfg.out}/qr-a.png` })
  await shot(a, 'wallet-pass')
  result.offlineQr = true
  // Spanish, still offline
  await a.click('#lang')
  await a.waitForSelector('#qr svg')
  result.spanishTitle = await a.textContent('h2')
  await shot(a, 'wallet-pass-es')
  await a.click('#lang')
  // --- a consent receipt from the kiosk's link (offline too: verified against the log key)
  if (cfg.receiptLink) {
    await a.goto(cfg.receiptLink)
    await ready(a)
    await a.waitForSelector('#notice', { timeout: 20000 })
    result.receipts = await a.$$eval('li.receipt', (els) => els.map((e) => e.textContent))
    await shot(a, 'wallet-receipts')
  }
  if (cfg.badReceiptLink) {
    await a.goto(cfg.badReceiptLink)
    await ready(a)
    await a.waitForSelector('#notice', { timeout: 20000 })
    result.receiptsAfterBad = await a.$$eval('li.receipt', (els) => els.map((e) => e.textContent))
  }
  const passBytes = await a.evaluate(async () => {
    const { load } = await import('./store.js')
    return Array.from((await load()).pass)
  })
  // --- a copy of the page on another phone: same pass, but it cannot have the key
  const ctxB = await browser.newContext(phone)
  const b = await ctxB.newPage()
  await b.goto(cfg.base)
  await ready(b)
  await b.evaluate(async (pass) => {
    const { save } = await import('./store.js')
    const core = await import('./core.js')
    const key = await core.newPatientKey()
    await save({ pair: key.pair, pass: new Uint8Array(pass), config: {}, receipts: [] })
  }, passBytes)
  await b.reload()
  await ready(b)
  await b.waitForSelector('#qr svg', { timeout: 20000 })
  await (await b.$('#qr')).screenshot({ path: `${cfg.out}/qr-b.png` })
  // --- a 320 px wide phone: nothing wider than the screen
  const ctxC = await browser.newContext({ ...phone, viewport: { width: 320, height: 640 } })
  const c = await ctxC.newPage()
  await c.goto(cfg.base)
  await ready(c)
  result.overflow320 = await c.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
} finally {
  await browser.close()
}
writeFileSync(`${cfg.out}/result.json`, JSON.stringify(result))
console.log(JSON.stringify(result))
