// The wallet's formats, with no DOM: the same bytes as kiosk/protocol (see docs/design-notes.md).
//   QR presentation: "KP1:" + base45(zlib(CBOR {pass, window, sig})), sig = Ed25519 over the
//   deterministic CBOR statement {ctx: "kiosk-qr-v1", site, window, pass_hash}.
//   Consent receipt: CBOR {leaf, leaf_index, checkpoint, inclusion} — an RFC 9162 inclusion
//   proof of the kiosk-signed leaf under a C2SP signed checkpoint, checked offline.
// Runs in the browser and in Node 20 (both have WebCrypto Ed25519 and CompressionStream).
import { decode, encode, rfc8949EncodeOptions } from 'cborg'

export const QR_PREFIX = 'KP1:'
export const QR_WINDOW_S = 30
const CTX_QR = 'kiosk-qr-v1'
const B45 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:'
// CWT claim keys of our pass
const SUB = 2, EXP = 4, CTI = 7, CNF = 8, SITE = -65537
const te = new TextEncoder()

/** Deterministic CBOR (RFC 8949 §4.2.1), as the kiosk's cbor.dumps. */
export function cborEncode (value) {
  return encode(value, rfc8949EncodeOptions)
}

function cborDecode (bytes) {
  // tag 18 = COSE_Sign1; maps with integer keys (CWT claims) come back as Map
  const tags = []
  tags[18] = (content) => content()  // cborg 6: the decoder is handed a control to call
  return decode(bytes, { useMaps: true, tags, strict: true, rejectDuplicateMapKeys: true })
}

export function base45Encode (bytes) {
  let out = ''
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    let n = bytes[i] * 256 + bytes[i + 1]
    const c = n % 45; n = (n - c) / 45
    const d = n % 45; const e = (n - d) / 45
    out += B45[c] + B45[d] + B45[e]
  }
  if (bytes.length % 2) {
    const n = bytes[bytes.length - 1]
    out += B45[n % 45] + B45[Math.floor(n / 45)]
  }
  return out
}

async function streamBytes (bytes, transform) {
  const stream = new Blob([bytes]).stream().pipeThrough(transform)
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

/** zlib (RFC 1950): the Compression Streams "deflate" format. */
export function zlibCompress (bytes) {
  return streamBytes(bytes, new CompressionStream('deflate'))
}

export async function sha256 (bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
}

export function b64urlEncode (bytes) {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export function b64Decode (text) {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  return Uint8Array.from(s, (c) => c.charCodeAt(0))
}

function equalBytes (a, b) {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i]
  return diff === 0
}

function hex (bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** What the wallet shows of its pass (decoded, not verified: the kiosk verifies). */
export function passInfo (passBytes) {
  const sign1 = cborDecode(passBytes)
  if (!Array.isArray(sign1) || sign1.length !== 4) throw new Error('not a COSE_Sign1 pass')
  const claims = cborDecode(sign1[2])
  if (!(claims instanceof Map)) throw new Error('pass claims are not a map')
  const cnf = claims.get(CNF)
  const key = cnf instanceof Map && cnf.get(1) instanceof Map ? cnf.get(1).get(-2) : null
  return {
    site: claims.get(SITE),
    patient: claims.get(SUB),
    passId: hex(claims.get(CTI)),
    expires: claims.get(EXP),
    patientKey: key
  }
}

export function windowOf (nowMs, windowS = QR_WINDOW_S) {
  return Math.floor(nowMs / 1000 / windowS)
}

/** The QR text for the time window that `nowMs` falls in. */
export async function qrPresentationText (passBytes, privateKey, nowMs) {
  const info = passInfo(passBytes)
  const window = windowOf(nowMs)
  const statement = cborEncode({ ctx: CTX_QR, site: info.site, window, pass_hash: await sha256(passBytes) })
  const sig = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, statement))
  const payload = cborEncode({ pass: passBytes, window, sig })
  return QR_PREFIX + base45Encode(await zlibCompress(payload))
}

/** A new patient key: the private half can never leave this browser. */
export async function newPatientKey () {
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey))
  return { pair, publicRaw: raw }
}

// ---- C2SP signed note + tlog-checkpoint ----

/** Parse a C2SP verifier key `name+hex(keyid)+base64(0x01 || key)`. */
export function parseVerifierKey (vkey) {
  // the base64 part may itself hold '+': split at the first two only
  const i = vkey.indexOf('+')
  const name = vkey.slice(0, i)
  const idHex = vkey.slice(i + 1, i + 9)
  if (i < 1 || vkey[i + 9] !== '+' || !/^[0-9a-f]{8}$/.test(idHex)) throw new Error('bad verifier key')
  const raw = b64Decode(vkey.slice(i + 10))
  if (raw.length !== 33 || raw[0] !== 1) throw new Error('bad verifier key')
  return { name, keyId: idHex, publicKey: raw.slice(1) }
}

async function noteKeyId (name, publicKey) {
  const h = await sha256(new Uint8Array([...te.encode(name), 0x0a, 0x01, ...publicKey]))
  return hex(h.slice(0, 4))
}

/** Verify a signed checkpoint note with the log's key; returns {origin, size, root}. */
export async function openCheckpoint (noteText, vkey) {
  const key = parseVerifierKey(vkey)
  if (await noteKeyId(key.name, key.publicKey) !== key.keyId) throw new Error('verifier key id mismatch')
  const split = noteText.indexOf('\n\n')
  if (split < 0 || !noteText.endsWith('\n')) throw new Error('not a signed note')
  const body = noteText.slice(0, split + 1)
  const sigLines = noteText.slice(split + 2, -1).split('\n')
  const pub = await crypto.subtle.importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify'])
  let verified = false
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line)
    if (!m || m[1] !== key.name) continue
    const blob = b64Decode(m[2])
    if (blob.length !== 68 || hex(blob.slice(0, 4)) !== key.keyId) continue
    if (await crypto.subtle.verify({ name: 'Ed25519' }, pub, blob.slice(4), te.encode(body))) verified = true
  }
  if (!verified) throw new Error('checkpoint signature does not verify with the log key')
  const lines = body.slice(0, -1).split('\n')
  if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error('bad checkpoint size')
  return { origin: lines[0], size: BigInt(lines[1]), root: b64Decode(lines[2]) }
}

async function nodeHash (left, right) {
  return sha256(new Uint8Array([0x01, ...left, ...right]))
}

/** RFC 9162 §2.1.3.2: is `leafHash` at `index` in the tree of `size` with `root`? */
export async function verifyInclusion (index, size, leafHash, proof, root) {
  if (index >= size) return false
  let fn = index
  let sn = size - 1n
  let r = leafHash
  for (const p of proof) {
    if (sn === 0n) return false
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r)
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n }
    } else {
      r = await nodeHash(r, p)
    }
    fn >>= 1n; sn >>= 1n
  }
  return sn === 0n && equalBytes(r, root)
}

/**
 * Check a consent receipt offline: the checkpoint's log signature, the leaf's inclusion, and
 * that the entry names this wallet's patient. Returns what the receipts list shows.
 */
export async function verifyReceipt (receiptBytes, vkey, patient) {
  const m = cborDecode(receiptBytes)
  if (!(m instanceof Map)) throw new Error('receipt is not a map')
  const leaf = m.get('leaf'); const index = BigInt(m.get('leaf_index'))
  const note = new TextDecoder('utf-8', { fatal: true }).decode(m.get('checkpoint'))
  const proof = m.get('inclusion')
  const cp = await openCheckpoint(note, vkey)
  const leafHash = await sha256(new Uint8Array([0x00, ...leaf]))
  if (!await verifyInclusion(index, cp.size, leafHash, proof, cp.root)) {
    throw new Error('the entry is not in the signed log')
  }
  const sign1 = cborDecode(leaf)
  const env = cborDecode(sign1[2])
  if (env.get('patient') !== patient) throw new Error('this receipt is for another patient')
  return {
    type: env.get('type'),
    created: Number(env.get('created')),
    entry: hex((await sha256(leaf)).slice(0, 6)),
    index: Number(index),
    treeSize: Number(cp.size),
    log: cp.origin
  }
}
