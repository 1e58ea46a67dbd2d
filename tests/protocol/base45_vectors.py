"""RFC 9285 §4.3–4.4 examples (base45) and values a decoder must refuse."""
RFC9285_EXAMPLES = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
]
RFC9285_INVALID = ["GGW", "BB8A", "bb8", "BB8:"]
