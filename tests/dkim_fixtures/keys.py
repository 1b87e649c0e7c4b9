"""Test DKIM keys, made once per session, and their DNS records.

The records are what a domain would publish at ``selector._domainkey.domain``;
tests hand them to dkimpy's ``dnsfunc`` (and to OpenDKIM's ``TestPublicKeys``),
since the test machine has no DNS zone of its own.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

DOMAIN = "example.com"


@dataclass(frozen=True)
class TestKey:
    selector: str
    pem: str
    algorithm: str

    @property
    def option(self) -> dict[str, str]:
        """The mailer's ``dkim`` dict for this key."""
        return {"domain": DOMAIN, "selector": self.selector, "private_key": self.pem}


@functools.cache
def rsa_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


@functools.cache
def ed25519_pem() -> str:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def record_for(pem: str) -> bytes:
    """The ``v=DKIM1`` TXT record publishing the public half of ``pem``."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kind = "ed25519"
    else:
        raw = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kind = "rsa"
    return f"v=DKIM1; k={kind}; p={base64.b64encode(raw).decode()}".encode()


#: A 512-bit RSA key, too weak to use (cryptography refuses to generate one).
WEAK_RSA_PEM = """\
-----BEGIN PRIVATE KEY-----
MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAzWBKi6D7+ICPXk99
SmkD3rHOX79wz7jnii6jG2aMrS4ddzHpdOfhKH0MuFuWJQLjljUJW1xVJw2Ip5Rw
4+MozQIDAQABAkBiyCfS1RGcyykqMY2P1sb3vAoJX6lBICyt+BSXv1F2kdPMzrW9
w29fLxu+m7thh5YHZ8GaAzoyIbC5IjwCXo25AiEA//WMoCUDUTzpWlkmeE8ygXhK
dmCdUNDNTo82649vZR8CIQDNaK01VG5jS/TvDoCMIO2jy0Jjy+l1DLixCIE2e7jo
kwIgBD3PbL/wRCJcQ5ECoC+/yIFzym5jbPlozYp2AIVJ9UUCIATTpN5P8ZgbvNGx
QYwJagwjRpgZvo6lkeF3FbI2Dg5JAiEA55PB3laniYi5Q7lJbYFzT6xxwvbQftOD
V4vpvP3fB44=
-----END PRIVATE KEY-----
"""

RSA = TestKey("rsa2026", rsa_pem(), "rsa-sha256")
ED25519 = TestKey("ed2026", ed25519_pem(), "ed25519-sha256")


def records() -> dict[str, bytes]:
    """``{"selector._domainkey.domain": TXT}`` for the test keys."""
    return {
        f"{key.selector}._domainkey.{DOMAIN}": record_for(key.pem)
        for key in (RSA, ED25519)
    }


def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
    """dkimpy's resolver hook, answering from :func:`records`."""
    return records().get(name.decode("ascii").rstrip("."))
