"""The pure webhook rules: signatures a receiver can check, the retry schedule and the URL policy."""

import pytest

from feedback.webhooks import (
    MAX_RETRY_SECONDS,
    SIGNATURE_HEADER,
    InvalidSignature,
    UrlRefused,
    check_url,
    next_retry,
    parse_url,
    refused_address,
    retry_delay,
    sign,
    verify,
)

SECRET = "whsec_test_secret"
BODY = b'{"type":"poll.response","id":"42"}'
T = 1767268800
# printf '%s' '1767268800.{"type":"poll.response","id":"42"}' | openssl dgst -sha256 -hmac 'whsec_test_secret'
OPENSSL_HMAC = "73a22fa9635b65d86800a6629d8b79ff350df734945536572904401d7775fc08"


def test_the_signature_matches_one_computed_by_openssl():
    assert sign(SECRET, T, BODY) == {SIGNATURE_HEADER: f"t={T},v1={OPENSSL_HMAC}"}


def test_verify_accepts_a_fresh_signature_and_returns_its_timestamp():
    header = sign(SECRET, T, BODY)[SIGNATURE_HEADER]
    assert verify(header, BODY, SECRET, now=T + 299) == T
    assert verify(header, BODY, SECRET, now=T - 299) == T  # a receiver's clock a little behind


@pytest.mark.parametrize(
    ("header", "body", "secret", "now", "why"),
    [
        (f"t={T},v1={OPENSSL_HMAC}", BODY.replace(b"42", b"43"), SECRET, T, "no signature matches"),
        (f"t={T},v1={OPENSSL_HMAC}", BODY + b" ", SECRET, T, "no signature matches"),
        (f"t={T},v1={OPENSSL_HMAC}", BODY, "whsec_other", T, "no signature matches"),
        (f"t={T + 1},v1={OPENSSL_HMAC}", BODY, SECRET, T, "no signature matches"),  # the timestamp is signed too
        (f"t={T},v1={OPENSSL_HMAC}", BODY, SECRET, T + 301, "away from now"),  # a replay, five minutes later
        (f"t={T},v1={OPENSSL_HMAC}", BODY, SECRET, T - 301, "away from now"),
        (f"v1={OPENSSL_HMAC}", BODY, SECRET, T, "no t="),
        (f"t={T}", BODY, SECRET, T, "no t="),
        ("", BODY, SECRET, T, "no t="),
        (f"t={T},v0={OPENSSL_HMAC}", BODY, SECRET, T, "no t="),
    ],
)
def test_verify_refuses_tampered_bodies_wrong_secrets_and_old_timestamps(header, body, secret, now, why):
    with pytest.raises(InvalidSignature, match=why):
        verify(header, body, secret, now=now)


def test_verify_accepts_any_matching_v1_among_several():
    assert verify(f"t={T},v1={'0' * 64},v1={OPENSSL_HMAC}", BODY, SECRET, now=T) == T


def test_retries_double_from_ten_seconds_with_jitter_between_half_and_all_of_the_delay():
    assert [retry_delay(n, rand=lambda: 1.0) for n in range(1, 6)] == [10, 20, 40, 80, 160]
    assert [retry_delay(n, rand=lambda: 0.0) for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert retry_delay(3, rand=lambda: 0.5) == 30


def test_retries_are_capped_and_stop_after_the_last_attempt():
    assert retry_delay(40, rand=lambda: 1.0) == MAX_RETRY_SECONDS
    assert retry_delay(10_000, rand=lambda: 1.0) == MAX_RETRY_SECONDS
    assert next_retry(9, 10, rand=lambda: 1.0) == 2560
    assert next_retry(10, 10) is None and next_retry(11, 10) is None


REFUSED = [
    "127.0.0.1",
    "127.1.2.3",
    "::1",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.1.1",
    "169.254.169.254",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
    "240.0.0.1",
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "192.0.2.1",  # documentation
    "2001:db8::1",
    "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "not an address",
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address):
    assert refused_address(address) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert refused_address(address) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "fc00::1", "169.254.1.1", "::ffff:127.0.0.1"])
def test_allow_private_lets_private_and_loopback_addresses_pass(address):
    assert refused_address(address, allow_private=True) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "0.0.0.0", "::", "224.0.0.1"])
def test_metadata_unspecified_and_multicast_addresses_are_refused_even_when_private_ones_are_allowed(address):
    assert refused_address(address, allow_private=True) is not None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "only http"),
        ("file:///etc/passwd", "only http"),
        ("gopher://example.com/", "only http"),
        ("javascript:alert(1)", "only http"),
        ("example.com/hook", "only http"),
        ("http://user:pass@example.com/hook", "credentials"),
        ("https://token@example.com/hook", "credentials"),
        ("http:///hook", "no host"),
        ("http://example.com:99999/", "port"),
        ("http://example.com:x/", "port"),
        ("http://exa mple.com/", "spaces"),
        ("http://example.com/\r\nHost: evil", "spaces"),
        ("https://example.com/" + "a" * 2048, "longer"),
    ],
)
def test_bad_urls_are_refused_whatever_they_resolve_to(url, why):
    with pytest.raises(UrlRefused, match=why):
        check_url(url, ["93.184.215.14"], allow_private=True)


def test_a_url_is_checked_against_every_address_its_host_resolved_to():
    target = check_url("https://Hooks.Example.com./in?x=1", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
    assert (target.scheme, target.host, target.port, target.path) == ("https", "hooks.example.com", 443, "/in?x=1")
    with pytest.raises(UrlRefused, match="127.0.0.1 is a loopback"):
        check_url("https://hooks.example.com/", ["93.184.215.14", "127.0.0.1"])  # one bad answer is enough
    with pytest.raises(UrlRefused, match="does not resolve"):
        check_url("https://hooks.example.com/", [])
    with pytest.raises(UrlRefused, match="loopback"):
        check_url("http://127.0.0.1:8080/", ["127.0.0.1"])
    assert check_url("http://127.0.0.1:8080/", ["127.0.0.1"], allow_private=True).port == 8080


@pytest.mark.parametrize(
    ("url", "host_header"),
    [("http://a.example/", "a.example"), ("https://a.example:8443/", "a.example:8443"), ("http://[::1]:81/x", "[::1]:81")],
)
def test_the_host_header_names_the_port_only_when_it_is_not_the_default(url, host_header):
    assert parse_url(url).host_header == host_header
