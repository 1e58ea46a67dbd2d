// The patient's web wallet: enrol over a one-time link, show the fresh QR presentation, keep
// consent receipts. Screens are chosen by the URL fragment, which never reaches a server:
//   #enrol=TOKEN   one-time enrolment link from the front desk
//   #r=RECEIPT     a consent receipt handed over by the kiosk (base64url CBOR)
//   #receipts      the receipts list
import qrcode from 'qrcode-generator'
import {
  b64Decode, b64urlEncode, newPatientKey, passInfo, qrPresentationText, QR_WINDOW_S, verifyReceipt, windowOf
} from './core.js'
import { LANGS, t } from './i18n.js'
import { load, save } from './store.js'

const main = document.getElementById('main')
const langButton = document.getElementById('lang')
let lang = localStorage.getItem('lang') || (navigator.language || 'en').slice(0, 2)
if (!LANGS[lang]) lang = 'en'
let wallet = null
let timer = null
let rerender = () => {}

function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'onclick') node.addEventListener('click', v)
    else node.setAttribute(k, v)
  }
  for (const c of children) node.append(c)
  return node
}

function screen (...children) {
  if (timer) { clearInterval(timer); timer = null }
  main.replaceChildren(...children)
}

function date (seconds) {
  return new Date(seconds * 1000).toLocaleDateString(lang, { year: 'numeric', month: 'long', day: 'numeric' })
}

function applyLanguage () {
  document.documentElement.lang = lang
  document.title = t(lang, 'title')
  for (const node of document.querySelectorAll('[data-t]')) node.textContent = t(lang, node.dataset.t)
  const other = lang === 'en' ? 'es' : 'en'
  langButton.textContent = LANGS[other]
  langButton.lang = other
}

langButton.addEventListener('click', () => {
  lang = lang === 'en' ? 'es' : 'en'
  localStorage.setItem('lang', lang)
  applyLanguage()
  rerender()
})

// ---- enrolment ----

async function enrol (token) {
  const status = el('p', { class: 'big', id: 'status' })
  const button = el('button', { class: 'wide', id: 'enrol' }, t(lang, 'enrolButton'))
  rerender = () => enrol(token)
  screen(el('h2', {}, t(lang, 'enrolTitle')), el('p', {}, t(lang, 'enrolBody')), button, status)
  button.addEventListener('click', async () => {
    button.disabled = true
    status.textContent = t(lang, 'enrolWorking')
    try {
      const key = await newPatientKey()
      const resp = await fetch(`api/enrol/${encodeURIComponent(token)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ public_key: b64urlEncode(key.publicRaw) })
      })
      const answer = await resp.json()
      if (!resp.ok) throw new Error(answer.error || resp.statusText)
      const pass = b64Decode(answer.pass)
      const info = passInfo(pass)
      if (!info.patientKey || b64urlEncode(info.patientKey) !== b64urlEncode(key.publicRaw)) {
        throw new Error('the pass certifies another key')
      }
      wallet = { pair: key.pair, pass, config: answer.config, receipts: [] }
      await save(wallet)
      history.replaceState(null, '', location.pathname) // the token is spent: drop it from history
      screen(el('h2', {}, t(lang, 'enrolDone')), el('p', {}, t(lang, 'enrolConfirm')),
        el('p', { class: 'code', id: 'confirm' }, answer.confirm),
        el('button', { class: 'wide', id: 'show', onclick: route }, t(lang, 'backButton')))
      rerender = route
    } catch (e) {
      button.disabled = false
      status.className = 'bad'
      status.textContent = t(lang, 'enrolFailed', { reason: e.message })
    }
  })
}

// ---- the QR presentation ----

async function drawQr (box, nowMs) {
  const text = await qrPresentationText(wallet.pass, wallet.pair.privateKey, nowMs)
  const qr = qrcode(0, 'M')
  qr.addData(text, 'Alphanumeric')
  qr.make()
  box.innerHTML = qr.createSvgTag({ cellSize: 4, margin: 4, scalable: true })
  box.dataset.window = String(windowOf(nowMs))
}

async function showPass () {
  const info = passInfo(wallet.pass)
  const box = el('div', { class: 'qr', id: 'qr', role: 'img', 'aria-label': t(lang, 'showTitle') })
  const refresh = el('p', { class: 'muted', id: 'refresh' })
  rerender = showPass
  screen(el('h2', {}, t(lang, 'showTitle')), box, refresh,
    el('p', {}, t(lang, 'expires', { date: date(Number(info.expires)) })),
    el('button', { class: 'wide secondary', id: 'receipts', onclick: () => { location.hash = 'receipts' } },
      t(lang, 'receiptsButton')))
  await drawQr(box, Date.now())
  const tick = async () => {
    const now = Date.now()
    const left = QR_WINDOW_S - Math.floor((now / 1000) % QR_WINDOW_S)
    refresh.textContent = t(lang, 'showRefresh', { s: left })
    if (box.dataset.window !== String(windowOf(now))) await drawQr(box, now)
  }
  await tick()
  timer = setInterval(tick, 1000)
  if (navigator.wakeLock) navigator.wakeLock.request('screen').catch(() => {})
}

// ---- receipts ----

function typeName (type) {
  if (type === 'consent') return t(lang, 'typeConsent')
  if (type === 'consent-withdrawal') return t(lang, 'typeWithdrawal')
  return t(lang, 'typeOther')
}

async function addReceipt (encoded) {
  const bytes = b64Decode(encoded)
  const known = wallet.receipts.some((r) => b64urlEncode(r.bytes) === b64urlEncode(bytes))
  if (!known) {
    wallet.receipts.push({ bytes, added: Date.now() })
    await save(wallet)
  }
  history.replaceState(null, '', `${location.pathname}#receipts`)
  await showReceipts(t(lang, 'receiptAdded'))
}

async function showReceipts (notice = '') {
  rerender = () => showReceipts()
  const items = []
  for (const r of wallet.receipts) {
    try { // verified afresh each time, offline, against the log key from enrolment
      const v = await verifyReceipt(r.bytes, wallet.config.log_vkey, passInfo(wallet.pass).patient)
      items.push(el('li', { class: 'card receipt' },
        el('p', {}, t(lang, 'receiptLine', {
          type: typeName(v.type), date: date(v.created / 1000), entry: v.entry, index: v.index + 1, size: v.treeSize
        })),
        el('p', { class: 'ok' }, t(lang, 'receiptOk'))))
    } catch (e) {
      items.push(el('li', { class: 'card receipt' }, el('p', { class: 'bad' }, t(lang, 'receiptBad', { reason: e.message }))))
    }
  }
  screen(el('h2', {}, t(lang, 'receiptsTitle')),
    notice ? el('p', { class: 'ok', id: 'notice' }, notice) : '',
    items.length ? el('ul', { class: 'receipts' }, ...items) : el('p', {}, t(lang, 'receiptsNone')),
    el('button', { class: 'wide', id: 'back', onclick: () => { location.hash = '' } }, t(lang, 'backButton')))
}

// ---- "add to Home Screen": Safari drops a site's storage after 7 days without a visit ----

function installPrompt () {
  const standalone = matchMedia('(display-mode: standalone)').matches || navigator.standalone
  if (standalone) return
  const footer = document.getElementById('install')
  const ios = /iPhone|iPad|iPod/.test(navigator.userAgent)
  footer.replaceChildren(el('p', {}, t(lang, ios ? 'installIos' : 'installOther')))
  footer.hidden = false
  window.addEventListener('beforeinstallprompt', (event) => {
    event.preventDefault()
    footer.append(el('button', { onclick: () => event.prompt() }, t(lang, 'installButton')))
  })
}

async function route () {
  const hash = location.hash.slice(1)
  const params = new URLSearchParams(hash)
  if (params.has('enrol') && !wallet) return enrol(params.get('enrol'))
  if (!wallet) {
    rerender = route
    return screen(el('p', { class: 'big' }, t(lang, 'noPass')))
  }
  if (params.has('r')) return addReceipt(params.get('r'))
  if (hash === 'receipts') return showReceipts()
  return showPass()
}

async function start () {
  applyLanguage()
  if (!globalThis.crypto || !crypto.subtle || !('CompressionStream' in globalThis)) {
    return screen(el('p', { class: 'bad' }, t(lang, 'unsupported')))
  }
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => {})
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {})
  wallet = await load()
  window.addEventListener('hashchange', route)
  installPrompt()
  await route()
  document.body.dataset.ready = 'true'
}

start()
