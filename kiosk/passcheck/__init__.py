"""`kiosk pass verify|dcc-corpus`: a pass or a foreign credential checked from text, a file or a
picture of its QR code, and the public EU DCC test corpus run step by step. It sits above
`kiosk.protocol` (the formats) and `kiosk.vision` (reading QR codes out of pictures)."""
