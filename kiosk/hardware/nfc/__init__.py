"""NFC: a PN532 on the Pi's UART reading patient passes from phones and Type 4 cards.

Layers, bottom up (STYLE.md item 1), each its own module:

* `frames`     PN532 host-link frame codec and streaming parser (UM0701-02 §6.2);
* `transport`  pyserial port (HSU wake-up, timeouts); pyserial errors become NfcError here;
* `pn532`      the chip's command set, ACK/NACK/retry/abort handling (UM0701-02 §7);
* `apdu`       ISO/IEC 7816-4 command/response APDUs;
* `pass_app`   the phone's HCE pass application (AID F0 "KIOSKPASS"; SELECT, READ BINARY,
               SIGN + GET RESPONSE) and the `PhoneWallet` protocol it delegates to;
* `type4`      NFC Forum Type 4 Tag (tag and reader side) and NDEF records
               (external type urn:nfc:ext:kiosk.example:pass);
* `iso_dep`    card-side ISO/IEC 14443-4 blocks, for the emulator's InCommunicateThru;
* `emulator`   a PN532 on a pseudo-terminal hosting a phone or card, with fault injection;
* `reader`     `NfcReader` / `NfcCredential`: what the kiosk uses; knows no frames.

Everything above `transport` raises only `kiosk.errors.NfcError` (reader) or
`kiosk.errors.FormatError` (pure parsers).
"""
