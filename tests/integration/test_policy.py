"""Per-route allow lists and require_verified."""

import json

import pytest

from cgtest import assert_error_answer, config, get, listener, route


def policy_routes(pki, upstream):
    return [
        route(upstream, path="/dom", allow={"email_domain": ["example.com"]}),
        route(upstream, path="/cn", allow={"cn": ["alice", "carol"]}),
        route(upstream, path="/ou", allow={"ou": ["staff"]}),
        route(upstream, path="/serial", allow={"serial": [
            # lower case with colons: compared case-insensitively
            ":".join(pki.alice.serial_hex[i:i + 2].lower()
                     for i in range(0, len(pki.alice.serial_hex), 2))]}),
        route(upstream, path="/both", allow={"cn": ["alice", "bob"],
                                             "email_domain": ["example.com"]}),
        route(upstream, path="/open"),
        route(upstream, path="/verified", require_verified=True),
    ]


@pytest.fixture
def required(cg, pki, upstream):
    return cg.start(config(pki, [listener(
        "web", pki, policy_routes(pki, upstream), mode="required")]))


@pytest.fixture
def optional(cg, pki, upstream):
    return cg.start(config(pki, [listener(
        "web", pki, policy_routes(pki, upstream), mode="optional")]))


CASES = [
    ("/dom", "alice", True), ("/dom", "carol", True), ("/dom", "bob", False),
    ("/dom", "noemail", False),
    ("/cn", "alice", True), ("/cn", "carol", True), ("/cn", "bob", False),
    ("/ou", "alice", True), ("/ou", "carol", True), ("/ou", "bob", False),
    ("/serial", "alice", True), ("/serial", "carol", False),
    ("/serial", "bob", False),
    ("/both", "alice", True), ("/both", "bob", False),
    ("/both", "carol", False),
    ("/open", "bob", True), ("/verified", "bob", True),
]


@pytest.mark.parametrize("path,who,allowed", CASES)
def test_allow_lists(required, pki, upstream, path, who, allowed):
    r = get(pki, required.port(), path + "/x", cert=getattr(pki, who))
    if allowed:
        assert r.status == 200, r
        assert r.upstream()["path"] == path + "/x"
    else:
        assert_error_answer(r, 403)
        assert upstream.started == []


@pytest.mark.parametrize("accept,want_json", [
    (None, False),
    ("text/html", False),
    ("*/*", False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
     False),
    ("application/json", True),
    ("application/json, text/plain;q=0.5", True),
    ("text/html;q=0.5, application/json", True),
    ("application/json;q=0.4, text/html;q=0.9", False),
])
def test_403_body_by_accept(required, pki, upstream, accept, want_json):
    headers = [("Accept", accept)] if accept else []
    r = get(pki, required.port(), "/dom", cert=pki.bob, headers=headers)
    assert_error_answer(r, 403)
    ctype = (r.header("Content-Type") or "").lower()
    if want_json:
        assert ctype.startswith("application/json"), r
        body = json.loads(r.body)
        assert body["error"] == "forbidden"
        assert isinstance(body["reason"], str) and body["reason"], body
    else:
        assert ctype.startswith("text/html"), r
        assert b"<" in r.body, r.body


def test_403_logged(required, pki):
    get(pki, required.port(), "/cn", cert=pki.bob)
    acc = required.wait_access(1)[-1]
    assert acc["status"] == 403
    assert acc["cn"] == "bob"
    assert acc["verify"] == "SUCCESS"


def test_require_verified_optional_listener(optional, pki, upstream):
    port = optional.port()
    r = get(pki, port, "/verified")
    assert_error_answer(r, 403)
    r = get(pki, port, "/verified", cert=pki.expired)
    assert_error_answer(r, 403)
    r = get(pki, port, "/verified", cert=pki.other_signed)
    assert_error_answer(r, 403)
    assert upstream.started == []
    r = get(pki, port, "/verified", cert=pki.alice)
    assert r.status == 200
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    # Routes without the requirement stay open to anonymous clients.
    r = get(pki, port, "/open")
    assert r.status == 200
    assert r.upstream().get("X-Client-Verify") == "NONE"


def test_allow_list_needs_verified_cert(optional, pki, upstream):
    """A refused certificate's identity is never matched against a list,
    even when its CN/email would match."""
    port = optional.port()
    for who in ("expired", "other_signed", "fake_signed"):
        r = get(pki, port, "/dom", cert=getattr(pki, who))
        assert_error_answer(r, 403)
        r = get(pki, port, "/cn", cert=getattr(pki, who))
        assert_error_answer(r, 403)
    r = get(pki, port, "/cn")
    assert_error_answer(r, 403)
    assert upstream.started == []


def test_expect_100_on_denied_route(required, pki, upstream):
    """No 100 Continue for a request that will be refused: the final 403
    comes first."""
    from cgtest import build_request, connect
    with connect(pki, required.port(), pki.bob) as c:
        c.send(build_request("POST", "/dom", headers=[
            ("Content-Length", "5"), ("Expect", "100-continue")]))
        r = c.read_response(stop_at_1xx=True)
        assert_error_answer(r, 403)
    assert upstream.started == []


@pytest.mark.parametrize("path", ["/open/../dom/x", "/open/%2e%2e/dom/x",
                                  "/open/%2E%2E/cn/x", "/open/./../cn/x"])
def test_dot_segments_do_not_bypass_policy(required, pki, upstream, path):
    """bob may use /open but not /dom or /cn: a path that an upstream would
    resolve to /dom or /cn must not be proxied under /open's policy."""
    r = get(pki, required.port(), path, cert=pki.bob)
    if r.status == 200:
        seen = r.upstream()["path"]
        assert ".." not in seen.replace("%2e", ".").replace("%2E", "."), \
            "proxied %r to the upstream under the open route" % seen
    else:
        assert r.status in (400, 403, 404), r
