// One IndexedDB record holds the wallet: the key pair (the private key non-extractable, so it
// can be used here but never read out), the pass, the clinic's settings and the receipts.
const DB = 'clinic-wallet'
const STORE = 'kv'

function open () {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE)
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

export async function load () {
  const db = await open()
  return new Promise((resolve, reject) => {
    const req = db.transaction(STORE).objectStore(STORE).get('wallet')
    req.onsuccess = () => resolve(req.result || null)
    req.onerror = () => reject(req.error)
  })
}

export async function save (wallet) {
  const db = await open()
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, 'readwrite')
    tx.objectStore(STORE).put(wallet, 'wallet')
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
  })
}
