"""pytest fixtures for the certgate integration suite.

pki       session-scoped test PKI (cgtest.PKI) made in a temp dir per run
upstream  a plain HTTP/1.1 upstream (function-scoped); upstreams makes more
cg        daemon factory: cg.start(cfg) -> cgtest.Daemon; every daemon is
          stopped at teardown (SIGTERM, exit 0, no sanitizer report) and its
          stderr is attached to the report of a failed test
"""

import os

import pytest

import cgtest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes a few seconds")


@pytest.fixture(scope="session")
def binary():
    if not os.access(cgtest.CERTGATE_BIN, os.X_OK):
        pytest.skip("certgate binary not found at %s (set CERTGATE_BIN)" %
                    cgtest.CERTGATE_BIN)
    return cgtest.CERTGATE_BIN


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return cgtest.PKI(str(tmp_path_factory.mktemp("pki")))


class Upstreams:
    def __init__(self, pki):
        self.pki = pki
        self.all = []

    def __call__(self, name="up", kind="http", **kw):
        u = cgtest.Upstream(name, kind, pki=self.pki, **kw)
        self.all.append(u)
        return u

    def close(self):
        for u in self.all:
            u.close()


@pytest.fixture
def upstreams(pki):
    u = Upstreams(pki)
    yield u
    u.close()


@pytest.fixture
def upstream(upstreams):
    return upstreams("up")


class Factory:
    def __init__(self, request, tmp_path):
        self.request = request
        self.tmp_path = tmp_path
        self.daemons = []
        request.node._cg_daemons = self.daemons

    def start(self, cfg, name=None, wait=True):
        name = name or "certgate%d" % len(self.daemons)
        wd = self.tmp_path / name
        wd.mkdir()
        d = cgtest.Daemon(wd, cfg, name=name)
        self.daemons.append(d)
        d.start(wait=wait)
        return d

    def workdir(self, name):
        wd = self.tmp_path / name
        wd.mkdir(exist_ok=True)
        return wd

    def teardown(self):
        errors = []
        for d in self.daemons:
            if d.proc is None:
                continue
            try:
                if d.running:
                    d.stop()
                else:
                    d.check_sanitizer()
            except AssertionError as e:
                errors.append("%s: %s" % (d.name, e))
            finally:
                d.kill()
        if errors:
            pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def cg(request, tmp_path, binary):
    f = Factory(request, tmp_path)
    yield f
    f.teardown()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in getattr(item, "_cg_daemons", []):
            text = d.stderr_text()
            if len(text) > 30000:
                text = "...\n" + text[-30000:]
            rep.sections.append(("certgate %s stderr (%s)" % (
                d.name, rep.when), text))
