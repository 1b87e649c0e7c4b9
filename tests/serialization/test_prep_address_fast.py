"""The fast path of ``prep_address`` for plain addresses gives what the parser
(Django 6's ``prep_address``) gives, on addresses built from every kind of
character that matters to RFC 5322."""

from __future__ import annotations

import random

from hypermail_django.serialization import envelope_builder as envelope

PIECES = [
    "a",
    "Z",
    "0",
    "9",
    ".",
    "..",
    "-",
    "_",
    "+",
    "!",
    "#",
    "$",
    "%",
    "&",
    "'",
    "*",
    "/",
    "=",
    "?",
    "^",
    "`",
    "{",
    "|",
    "}",
    "~",
    "@",
    "@@",
    " ",
    "\t",
    '"',
    "(",
    ")",
    "<",
    ">",
    ",",
    ";",
    ":",
    "[",
    "]",
    "\\",
    "é",
    "ü",
    "\r\n",
    "\n",
    "xn--",
    "user",
    "example.com",
    ".com",
    "Name <",
    ">",
]


def _parsed(address: str) -> str | None:
    try:
        return envelope._addr_spec(address, True)
    except ValueError:
        return None


def _candidates(count: int):
    draw = random.Random(5321)
    yield from [
        "a@b",
        "first.last@example.com",
        "a+tag@sub.example.co.uk",
        "x@-",
        ".a@b",
        "a.@b",
        "a..b@c",
        "a@b.",
        "a@.b",
        "a@b..c",
        "a@[127.0.0.1]",
        "a b@c",
        "Ann <a@b>",
        "a@b@c",
        "@b",
        "a@",
        "é@b",
        "a@é.com",
        '"a"@b',
        "a@b (c)",
        "a@b\n",
    ]
    atext = [p for p in PIECES if p.isascii() and p not in " \t\r\n"]
    for n in range(count):
        if n % 2:  # Anything at all.
            yield "".join(draw.choice(PIECES) for _ in range(draw.randint(1, 6)))
            continue
        # local@domain, mostly from characters a plain address may hold.
        pool = atext if n % 4 else PIECES
        local = "".join(draw.choice(pool) for _ in range(draw.randint(1, 4)))
        domain = "".join(
            draw.choice(["a", "b1", "-", ".", "xn--", "com", "é", "_"])
            for _ in range(draw.randint(1, 4))
        )
        yield f"{local}@{domain}"


def test_fast_path_agrees_with_the_parser():
    plain = 0
    for address in _candidates(50_000):
        if envelope._PLAIN.fullmatch(address):
            plain += 1
            assert envelope.prep_address(address) == _parsed(address) == address
    assert plain > 1_000  # The draw reaches the fast path often enough.


def test_what_the_parser_rejects_never_takes_the_fast_path():
    rejected = 0
    for address in _candidates(50_000):
        try:
            envelope._addr_spec(address, True)
        except Exception:  # The parser's own crashes (TypeError...) too.
            rejected += 1
            assert not envelope._PLAIN.fullmatch(address), address
    assert rejected > 1_000
