// The wallet's words, in English and Spanish; each language is named in itself.
export const LANGS = { en: 'English', es: 'Español' }

export const TEXT = {
  en: {
    title: 'Clinic pass',
    enrolTitle: 'Set up your clinic pass',
    enrolBody: 'This phone will make its own secret key and keep your pass. Nobody else, not even the clinic, gets the key.',
    enrolButton: 'Set up my pass',
    enrolWorking: 'Setting up…',
    enrolDone: 'Your pass is ready.',
    enrolConfirm: 'Show this code to the front desk:',
    enrolFailed: 'The pass could not be set up: {reason}. Please ask the front desk for a new link.',
    noPass: 'There is no pass on this phone yet. Ask the front desk for your set-up link.',
    showTitle: 'Show this to the kiosk camera',
    showRefresh: 'The code changes every 30 seconds. New code in {s} s.',
    expires: 'Pass valid until {date}',
    receiptsButton: 'My consent receipts',
    backButton: 'Back to my pass',
    receiptsTitle: 'My consent receipts',
    receiptsNone: 'No receipts yet. After you sign a consent, the kiosk shows a code: scan it with this phone to keep the receipt.',
    receiptOk: 'Verified: recorded in the clinic log',
    receiptBad: 'Not verified: {reason}',
    receiptAdded: 'Receipt saved.',
    receiptLine: '{type} on {date} (entry {entry}, position {index} of {size})',
    typeConsent: 'Consent',
    typeWithdrawal: 'Consent withdrawn',
    typeOther: 'Record',
    installIos: 'Keep your pass: tap Share, then "Add to Home Screen". Otherwise the phone may delete it after 7 days without a visit.',
    installOther: 'Keep your pass: add this page to your Home Screen. Otherwise the phone may delete it.',
    installButton: 'Add to Home Screen',
    unsupported: 'This browser cannot make a secure key (Ed25519). Please update it, or ask the front desk for a card.',
    offline: 'Offline: your pass still works.'
  },
  es: {
    title: 'Pase de la clínica',
    enrolTitle: 'Prepare su pase de la clínica',
    enrolBody: 'Este teléfono creará su propia clave secreta y guardará su pase. Nadie más, ni siquiera la clínica, recibe la clave.',
    enrolButton: 'Preparar mi pase',
    enrolWorking: 'Preparando…',
    enrolDone: 'Su pase está listo.',
    enrolConfirm: 'Muestre este código en la recepción:',
    enrolFailed: 'No se pudo preparar el pase: {reason}. Pida un enlace nuevo en la recepción.',
    noPass: 'Este teléfono aún no tiene un pase. Pida su enlace de preparación en la recepción.',
    showTitle: 'Muestre esto a la cámara del quiosco',
    showRefresh: 'El código cambia cada 30 segundos. Código nuevo en {s} s.',
    expires: 'Pase válido hasta el {date}',
    receiptsButton: 'Mis comprobantes de consentimiento',
    backButton: 'Volver a mi pase',
    receiptsTitle: 'Mis comprobantes de consentimiento',
    receiptsNone: 'Aún no hay comprobantes. Después de firmar un consentimiento, el quiosco muestra un código: escanéelo con este teléfono para guardar el comprobante.',
    receiptOk: 'Verificado: registrado en el registro de la clínica',
    receiptBad: 'No verificado: {reason}',
    receiptAdded: 'Comprobante guardado.',
    receiptLine: '{type} el {date} (entrada {entry}, posición {index} de {size})',
    typeConsent: 'Consentimiento',
    typeWithdrawal: 'Consentimiento retirado',
    typeOther: 'Registro',
    installIos: 'Conserve su pase: toque Compartir y luego "Agregar a inicio". Si no, el teléfono puede borrarlo tras 7 días sin visitas.',
    installOther: 'Conserve su pase: agregue esta página a su pantalla de inicio. Si no, el teléfono puede borrarlo.',
    installButton: 'Agregar a inicio',
    unsupported: 'Este navegador no puede crear una clave segura (Ed25519). Actualícelo o pida una tarjeta en la recepción.',
    offline: 'Sin conexión: su pase sigue funcionando.'
  }
}

export function t (lang, key, params = {}) {
  const s = (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key
  return s.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''))
}
