"""The client's address behind trusted proxies (X-Forwarded-For read from the right), and
whether they took the request over HTTPS (X-Forwarded-Proto, from them only)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hounsfield.web.clients import came_over_tls, client_address, networks

PROXIES = networks(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # not a proxy of ours: the peer
        ("10.0.0.2", None, "10.0.0.2"),  # our proxy, saying nothing
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "1.2.3.4, 198.51.100.1", "198.51.100.1"),  # left of it: the client's say
        ("10.0.0.2", "198.51.100.1, 10.0.0.1", "198.51.100.1"),  # two proxies of ours
        ("10.0.0.2", "10.0.0.9, 10.0.0.1", "10.0.0.9"),  # only proxies: the farthest
        ("10.0.0.2", "evil, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, not-an-address", "10.0.0.2"),
        ("10.0.0.2", " , ", "10.0.0.2"),
        ("fd00::2", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_the_client_is_the_nearest_hop_that_is_not_our_proxy(
    peer: str, forwarded_for: str | None, client: str
) -> None:
    headers = {} if forwarded_for is None else {"x-forwarded-for": forwarded_for}
    assert client_address(peer, headers, PROXIES) == client


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("10.0.0.2", {"x-forwarded-for": "198.51.100.1"}, ()) == "10.0.0.2"


def test_a_long_header_is_read_no_further_than_the_last_hops() -> None:
    header = ", ".join(["198.51.100.1"] + ["10.0.0.1"] * 100)
    assert client_address("10.0.0.2", {"x-forwarded-for": header}, PROXIES) == "10.0.0.1"


@given(header=st.text(max_size=2000))
def test_any_header_gives_the_peer_or_an_address_it_holds(header: str) -> None:
    """Whatever a client sends (behind our proxy), the answer is an address, never an error."""
    client = client_address("10.0.0.2", {"x-forwarded-for": header}, PROXIES)
    assert client == "10.0.0.2" or client in [hop.strip() for hop in header.split(",")]
    ipaddress.ip_address(client)


@pytest.mark.parametrize(
    ("peer", "proto", "secure"),
    [
        ("10.0.0.2", "https", True),  # our proxy terminated TLS
        ("10.0.0.2", "HTTPS", True),
        ("10.0.0.2", "http", False),
        ("10.0.0.2", None, False),
        ("10.0.0.2", "http, https", True),  # the nearest proxy's word is the last
        ("10.0.0.2", "https, http", False),  # a client's own "https" before it proves nothing
        ("203.0.113.7", "https", False),  # anyone else may write the header
    ],
)
def test_only_a_trusted_proxy_says_the_request_came_over_tls(
    peer: str, proto: str | None, secure: bool
) -> None:
    headers = {} if proto is None else {"x-forwarded-proto": proto}
    assert came_over_tls(peer, headers, PROXIES) is secure
    assert not came_over_tls(peer, headers, ())
