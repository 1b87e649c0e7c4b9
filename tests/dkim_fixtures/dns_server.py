"""A tiny authoritative DNS server on loopback, answering TXT queries from a dict.

For ``mailcheck``'s DKIM check: dnspython asks it over UDP exactly as it asks
a real resolver, so the lookup code runs unchanged. Unknown names get NXDOMAIN.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset


@contextlib.contextmanager
def dns_server(records: dict[str, bytes]) -> Iterator[dns.resolver.Resolver]:
    """Serve ``{"name": TXT}``; yield a dnspython resolver that asks it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            (question,) = query.question
            name = question.name.to_text().rstrip(".").lower()
            txt = records.get(name)
            if txt is None or question.rdtype != dns.rdatatype.TXT:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                chunks = [txt[i : i + 255] for i in range(0, len(txt), 255)]
                quoted = " ".join('"' + c.decode("ascii") + '"' for c in chunks)
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, "IN", "TXT", quoted)
                )
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = sock.getsockname()[1]
    try:
        yield resolver
    finally:
        stop.set()
        thread.join()
        sock.close()
