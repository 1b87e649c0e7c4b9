"""DKIM signing of the serialized message, with dkimpy (the ``dkim`` extra).

The ``dkim`` option of a mailer is one dict, or a list of them for several
signatures (RSA and Ed25519 together)::

    {"domain": "example.com", "selector": "mail2026",
     "private_key": "/etc/dkim/mail2026.pem",   # or PEM text
     # or "private_key_env": "DKIM_PRIVATE_KEY" (PEM text in that variable)
     "algorithm": "rsa-sha256",      # or "ed25519-sha256"; default: the key's
     "headers": ["From", "To", "Subject", ...],  # default: dkimpy's list
     "from_mismatch": "refuse"}                  # or "sign"

Keys are read and checked when the option is resolved (the backend is built,
or ``manage.py check`` runs), so an unreadable or malformed key fails at start-up,
not on the first send. The key never appears in a repr, a log or an error.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.mail import EmailMessage
from django.utils.encoding import punycode

from ..exceptions import ConfigurationError, DKIMDomainMismatch, DKIMSigningError
from ..serialization.envelope_builder import prep_address
from ..transport import Envelope

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
MISMATCH = ("refuse", "sign")
_KEYS = (
    "domain",
    "selector",
    "private_key",
    "private_key_env",
    "algorithm",
    "headers",
    "from_mismatch",
)
#: RSA keys shorter than this are refused (RFC 8301: verifiers must not accept them).
MIN_RSA_BITS = 1024
#: Shorter than this gets a system check warning (RFC 8301 recommends 2048).
RECOMMENDED_RSA_BITS = 2048


@dataclass(frozen=True)
class DKIMKey:
    """One signature to add: domain, selector and the private key, checked."""

    domain: str
    selector: str
    algorithm: str
    #: What dkimpy takes: PKCS#1 PEM for RSA, the base64 seed for Ed25519.
    private_key: bytes = field(repr=False)
    headers: tuple[str, ...] | None = None
    from_mismatch: str = "refuse"
    #: Where the key came from, for messages (a path, a variable; never the key).
    source: str = "inline PEM"
    #: RSA key length; 256 for Ed25519.
    bits: int = 0

    @property
    def record_name(self) -> str:
        """The DNS name of the public key: ``selector._domainkey.domain``."""
        return f"{self.selector}._domainkey.{self.domain}"

    def public_key_record(self) -> str:
        """The TXT record to publish: ``v=DKIM1; k=...; p=...``."""
        return f"v=DKIM1; k={self.key_type}; p={self.public_key_base64()}"

    @property
    def key_type(self) -> str:
        return "ed25519" if self.algorithm == "ed25519-sha256" else "rsa"

    def public_key_base64(self) -> str:
        """The ``p=`` value: base64 of the DER SubjectPublicKeyInfo (RSA) or of
        the raw 32-byte key (Ed25519, RFC 8463)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        if self.key_type == "ed25519":
            seed = base64.b64decode(self.private_key)
            public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
            raw = public.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        else:
            private = serialization.load_pem_private_key(self.private_key, None)
            raw = private.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        return base64.b64encode(raw).decode("ascii")

    def aligned(self, from_domain: str) -> bool:
        """Whether ``from_domain`` is the signing domain or a subdomain of it
        (DMARC's relaxed alignment)."""
        return from_domain == self.domain or from_domain.endswith("." + self.domain)


def sign_envelope(
    envelope: Envelope, message: EmailMessage, keys: tuple[DKIMKey, ...]
) -> Envelope:
    """``envelope`` with one ``DKIM-Signature`` per key prepended to its bytes.

    Raises :class:`DKIMDomainMismatch` when the From domain is not a key's
    domain and that key's ``from_mismatch`` is ``"refuse"``.
    """
    import dkim

    from_domain = _from_domain(message)
    for key in keys:
        if not key.aligned(from_domain) and key.from_mismatch == "refuse":
            raise DKIMDomainMismatch(
                f"The message {message.subject!r} is from the domain "
                f"{from_domain!r}, but the mailer signs for {key.domain!r} "
                f"(selector {key.selector!r}). Send it from {key.domain} (or a "
                "subdomain), or set the key's 'from_mismatch' to 'sign'. "
                "Nothing was sent."
            )
    data = envelope.data
    for key in keys:
        try:
            signature = dkim.sign(
                data,
                key.selector.encode("ascii"),
                key.domain.encode("ascii"),
                key.private_key,
                include_headers=(
                    None if key.headers is None else [h.encode() for h in key.headers]
                ),
                linesep=b"\r\n",
                signature_algorithm=key.algorithm.encode("ascii"),
            )
        except dkim.DKIMException as exc:
            raise DKIMSigningError(
                f"Could not DKIM-sign the message {message.subject!r} for "
                f"{key.domain!r} (selector {key.selector!r}): {exc}. Nothing was sent."
            ) from None
        data = signature + data
    return replace(envelope, data=data)


def _from_domain(message: EmailMessage) -> str:
    """The domain of the From header as Django writes it, IDNA, lowercase."""
    author = message.extra_headers.get("From", message.from_email)
    try:
        spec = prep_address(author, force_ascii=True)
    except ValueError:
        return ""
    return spec.rpartition("@")[2].lower()


# -- option check ------------------------------------------------------------------


def parse_dkim(value: Any, where: str) -> tuple[DKIMKey, ...] | None:
    """Check the ``dkim`` option and read its keys: one dict or a list of them."""
    if value is None or value == [] or value == ():
        return None
    if isinstance(value, DKIMKey):
        return (value,)
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, (list, tuple)) or not items:
        # Never echo the value: it may be the key itself, given in the wrong place.
        raise _invalid(
            where, f"must be a dict or a list of dicts, got a {type(value).__name__}"
        )
    keys = []
    for number, item in enumerate(items):
        label = where if isinstance(value, dict) else f"{where}[{number}]"
        keys.append(item if isinstance(item, DKIMKey) else _key(item, label))
    return tuple(keys)


def _invalid(where: str, why: str, code: str = "invalid_dkim") -> ConfigurationError:
    return ConfigurationError(f"{where} {why}.", code=code)


def _key(item: Any, where: str) -> DKIMKey:
    try:
        import dkim  # noqa: F401
        import nacl  # noqa: F401
    except ImportError:
        raise _invalid(
            where,
            "needs dkimpy and PyNaCl: pip install 'hypermail-django[dkim]'",
            code="dkim_not_installed",
        ) from None
    if not isinstance(item, dict):
        raise _invalid(where, f"must be a dict, got a {type(item).__name__}")
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        raise _invalid(where, f"has unknown key(s) {unknown}; valid: {list(_KEYS)}")
    domain = _name(item.get("domain"), f"{where}['domain']", domain=True)
    selector = _name(item.get("selector"), f"{where}['selector']", domain=False)
    algorithm = item.get("algorithm")
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise _invalid(
            f"{where}['algorithm']",
            f"is {algorithm!r}; use one of {', '.join(ALGORITHMS)}",
        )
    mismatch = item.get("from_mismatch", "refuse")
    if mismatch not in MISMATCH:
        raise _invalid(
            f"{where}['from_mismatch']", f"is {mismatch!r}; use 'refuse' or 'sign'"
        )
    headers = item.get("headers")
    if headers is not None:
        if isinstance(headers, str) or not all(
            isinstance(h, str) and h and h.isascii() and ":" not in h for h in headers
        ):
            raise _invalid(f"{where}['headers']", "must be a list of header names")
        if "from" not in {h.lower() for h in headers}:
            raise _invalid(f"{where}['headers']", "must include 'From' (RFC 6376)")
        headers = tuple(headers)
    text, source = _key_text(item, where)
    algorithm, private, bits = _load_key(text, algorithm, source, where)
    return DKIMKey(
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        private_key=private,
        headers=headers,
        from_mismatch=mismatch,
        source=source,
        bits=bits,
    )


def _name(value: Any, where: str, *, domain: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(where, "is required: a DNS name")
    name = value.strip().rstrip(".").lower()
    if domain and not name.isascii():
        name = punycode(name)
    labels = name.split(".")
    if not all(
        label and label.replace("-", "").replace("_", "").isalnum() and label.isascii()
        for label in labels
    ) or (domain and len(labels) < 2):
        raise _invalid(where, f"is {value!r}, which is not a valid DNS name")
    return name


def _key_text(item: dict[str, Any], where: str) -> tuple[str, str]:
    """The key's text and where it came from (never the text itself)."""
    inline, variable = item.get("private_key"), item.get("private_key_env")
    if (inline is None) == (variable is None):
        raise _invalid(
            where,
            "needs exactly one of 'private_key' (PEM text or a file path) and "
            "'private_key_env' (the name of an environment variable holding it)",
        )
    if variable is not None:
        text = os.environ.get(str(variable))
        if not text:
            raise _invalid(
                f"{where}['private_key_env']",
                f"names the environment variable {variable!r}, which is not set",
                code="dkim_key_unreadable",
            )
        return text, f"environment variable {variable}"
    if isinstance(inline, bytes):
        inline = inline.decode("ascii", "replace")
    if not isinstance(inline, (str, os.PathLike)):
        raise _invalid(f"{where}['private_key']", "must be PEM text or a file path")
    text = os.fspath(inline)
    if "-----BEGIN" in text:
        return text, "inline PEM"
    if os.path.isfile(text) or not _looks_like_seed(text):
        try:
            with open(text, encoding="ascii") as handle:
                return handle.read(), f"file {text}"
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a PEM file"
            raise _invalid(
                f"{where}['private_key']",
                f"names the file {text!r}, which cannot be read ({reason})",
                code="dkim_key_unreadable",
            ) from None
    return text, "inline key"


def _looks_like_seed(text: str) -> bool:
    """Whether ``text`` could be dknewkey's Ed25519 key (base64, 32 bytes)."""
    try:
        return len(base64.b64decode(text.strip(), validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _load_key(
    text: str, algorithm: str | None, source: str, where: str
) -> tuple[str, bytes, int]:
    """(algorithm, the key as dkimpy takes it, bits); ConfigurationError else."""
    try:
        return _parse_key(text, algorithm)
    except _KeyProblem as problem:
        raise _invalid(
            f"{where} (key from {source})", problem.why, code=problem.code
        ) from None


class _KeyProblem(Exception):
    def __init__(self, why: str, code: str = "dkim_invalid_key") -> None:
        super().__init__(why)
        self.why, self.code = why, code


@functools.lru_cache(maxsize=64)
def _parse_key(text: str, algorithm: str | None) -> tuple[str, bytes, int]:
    """:func:`_load_key` without the labels, memoized: Django builds a backend
    for every ``send_mail()``, and loading an RSA key (which checks it) costs
    tens of milliseconds. Errors are not cached; they are raised again."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def bad(why: str) -> _KeyProblem:
        return _KeyProblem(why)

    if "-----BEGIN" not in text:
        # dknewkey's Ed25519 format: the base64 of the 32-byte seed.
        try:
            seed = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            seed = b""
        if len(seed) != 32 or algorithm == "rsa-sha256":
            raise bad("is not a PEM private key (nor a base64 Ed25519 seed)")
        return "ed25519-sha256", base64.b64encode(seed), 256
    try:
        key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    except TypeError:
        raise bad("is encrypted; give the key without a passphrase") from None
    except (ValueError, UnicodeEncodeError):
        raise bad("is not a valid PEM private key") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if algorithm not in (None, "rsa-sha256"):
            raise bad(f"is an RSA key, but the algorithm is {algorithm!r}")
        if key.key_size < MIN_RSA_BITS:
            raise _KeyProblem(
                f"is a {key.key_size}-bit RSA key; receivers ignore signatures "
                f"made with fewer than {MIN_RSA_BITS} bits (RFC 8301). Use a "
                f"{RECOMMENDED_RSA_BITS}-bit key",
                code="dkim_weak_key",
            )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return "rsa-sha256", pem, key.key_size
    if isinstance(key, ed25519.Ed25519PrivateKey):
        if algorithm not in (None, "ed25519-sha256"):
            raise bad(f"is an Ed25519 key, but the algorithm is {algorithm!r}")
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return "ed25519-sha256", base64.b64encode(seed), 256
    raise bad(f"is a {type(key).__name__}; DKIM keys are RSA or Ed25519")


# -- DNS -----------------------------------------------------------------------------

DNSFunc = Callable[..., bytes | None]


@dataclass(frozen=True)
class DNSCheck:
    """What ``mailcheck`` found for one key: ``match``, ``mismatch``,
    ``missing`` (no record) or ``unreachable`` (DNS could not be asked)."""

    domain: str
    selector: str
    status: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("match", "unreachable")

    def to_dict(self) -> dict[str, str]:
        return {
            "domain": self.domain,
            "selector": self.selector,
            "status": self.status,
            "detail": self.detail,
        }


def check_dns(
    key: DKIMKey, dnsfunc: DNSFunc | None = None, timeout: float = 5
) -> DNSCheck:
    """Compare the public key published for ``key``'s selector with its private key.

    ``dnsfunc`` is dkimpy's resolver hook (name, timeout) -> TXT bytes or None;
    the default asks DNS through dnspython.
    """
    import dkim

    def result(status: str, detail: str) -> DNSCheck:
        return DNSCheck(key.domain, key.selector, status, detail)

    if dnsfunc is None:
        dnsfunc = dns_lookup()
    name = key.record_name
    try:
        record = dnsfunc(name.encode("ascii"), timeout=timeout)
    except Exception as exc:  # dnspython: no network, timeout, SERVFAIL...
        return result("unreachable", f"DNS could not be asked for {name}: {exc}")
    if record is None or record == b"":
        return result(
            "missing", f"no TXT record at {name}; publish: {key.public_key_record()}"
        )
    try:
        tags = dkim.util.parse_tag_value(record)
    except dkim.util.InvalidTagValueList as exc:
        return result("mismatch", f"the record at {name} is malformed: {exc}")
    published = b"".join(tags.get(b"p", b"").split()).decode("ascii", "replace")
    if not published:
        return result("mismatch", f"the key at {name} is revoked (empty p=)")
    kind = tags.get(b"k", b"rsa").decode("ascii", "replace")
    if kind != key.key_type or published != key.public_key_base64():
        return result(
            "mismatch",
            f"the public key at {name} does not match the private key (from "
            f"{key.source}); publish: {key.public_key_record()}",
        )
    return result("match", f"{name} publishes the public key of this private key")


def dns_lookup(resolver: Any = None) -> DNSFunc:
    """A strict TXT lookup through dnspython's ``resolver`` (default: the
    system's) that raises when DNS cannot be asked, where dkimpy's own
    ``get_txt`` turns every failure into "no record"."""
    import dns.resolver

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        ask = resolver or dns.resolver.get_default_resolver()
        try:
            answer = ask.resolve(name.decode("ascii"), "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(rdata.strings) for rdata in answer)

    return lookup
