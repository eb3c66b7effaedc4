"""Tokens and TLS, on both ports, from arguments and from the environment."""

import os
import ssl
import subprocess

import pytest

import jobfs

TOKENS = {
    "alice": ("master", "alice-0123456789abcdef0123"),
    "wk": ("worker", "wk-0123456789abcdef0123456789"),
    "root": ("admin", "root-0123456789abcdef012345"),
}


def write_tokens(path):
    with open(path, "w") as f:
        for name, (role, tok) in TOKENS.items():
            f.write(f"{name} {role} {tok}\n")
    os.chmod(path, 0o600)


def echo(body, job):
    return body


def test_tokens(make_daemon, workers, tmp_path, monkeypatch):
    tokens = str(tmp_path / "tokens")
    write_tokens(tokens)
    d = make_daemon("--auth", tokens)
    workers.start(jobfs.Worker("sec", echo, token=TOKENS["wk"][1], **d.kw()))
    c = jobfs.Client(token=TOKENS["alice"][1], **d.kw())
    assert c.submit("sec", {"a": 1}).result(10) == {"a": 1}
    assert c.status(c.submit("sec", 2).id)["owner"] == "alice"
    # From the environment: the token file.
    tf = tmp_path / "alice.token"
    tf.write_text(TOKENS["alice"][1] + "\n")
    monkeypatch.setenv("JOBFS_TOKEN_FILE", str(tf))
    assert jobfs.Client(**d.kw()).submit("sec", 3).result(10) == 3
    monkeypatch.delenv("JOBFS_TOKEN_FILE")
    # A wrong token is refused at connect; none at all gets auth_required.
    with pytest.raises(jobfs.AuthError) as e:
        jobfs.Client(token="wrong", **d.kw()).ping()
    assert e.value.code == "auth_failed"
    with pytest.raises(jobfs.ProtocolError) as e:
        jobfs.Client(**d.kw()).submit("sec", 4).result(10)
    assert e.value.code == "auth_required"
    # A worker token may not submit; the admin configures types.
    with pytest.raises(jobfs.ProtocolError) as e:
        jobfs.Client(token=TOKENS["wk"][1], dialect="action", **d.kw()).submit("sec", 5)
    assert e.value.code == "forbidden"
    admin = jobfs.Client(token=TOKENS["root"][1], **d.kw())
    assert admin.configure("sec", retries=2)["retries"] == 2
    assert c.submit("sec", 6).result(10) == 6


def make_certs(tmp):
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)

    def cert(name, cn, ext="basicConstraints=CA:FALSE"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tmp}/{name}.key",
            "-out", f"{tmp}/{name}.csr", "-subj", f"/CN={cn}")
        with open(f"{tmp}/{name}.ext", "w") as f:
            f.write(ext + "\n")
        run("x509", "-req", "-in", f"{tmp}/{name}.csr", "-CA", f"{tmp}/ca.pem", "-CAkey",
            f"{tmp}/ca.key", "-CAcreateserial", "-out", f"{tmp}/{name}.pem", "-days", "2",
            "-extfile", f"{tmp}/{name}.ext")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tmp}/ca.key",
        "-out", f"{tmp}/ca.pem", "-days", "2", "-subj", "/CN=ca")
    cert("srv", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    cert("wk", "wk")
    cert("alice", "alice")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("certs"))
    make_certs(tmp)
    return tmp


def test_tls(make_daemon, workers, certs, procs, monkeypatch):
    d = make_daemon("--tls-cert", f"{certs}/srv.pem", "--tls-key", f"{certs}/srv.key")
    ca = f"{certs}/ca.pem"
    workers.start(jobfs.Worker("tls", echo, ca=ca, **d.kw()))
    c = jobfs.Client(ca=ca, **d.kw())
    assert c.submit("tls", "secret").result(10) == "secret"
    # JOBFS_CA alone turns TLS on, for a client made without arguments.
    monkeypatch.setenv("JOBFS_CA", ca)
    assert jobfs.Client(**d.kw()).submit("tls", 2).result(10) == 2
    monkeypatch.delenv("JOBFS_CA")
    # A client that does not trust the daemon's CA fails its handshake.
    with pytest.raises(ssl.SSLError):
        jobfs.Client(tls=True, **d.kw()).ping()
    # Plain frames on a TLS port: the daemon says tls_required and closes.
    with pytest.raises(jobfs.ProtocolError) as e:
        jobfs.Client(**d.kw()).ping()
    assert e.value.code == "tls_required"


def test_tls_client_certificates_authenticate(make_daemon, workers, certs, tmp_path):
    tokens = str(tmp_path / "tokens")
    write_tokens(tokens)
    d = make_daemon("--auth", tokens, "--tls-cert", f"{certs}/srv.pem", "--tls-key",
                    f"{certs}/srv.key", "--tls-ca", f"{certs}/ca.pem")
    ca = f"{certs}/ca.pem"
    workers.start(jobfs.Worker("mtls", echo, ca=ca, cert=f"{certs}/wk.pem",
                               key=f"{certs}/wk.key", **d.kw()))
    c = jobfs.Client(ca=ca, cert=f"{certs}/alice.pem", key=f"{certs}/alice.key", **d.kw())
    j = c.submit("mtls", [1, 2])
    assert j.result(10) == [1, 2]
    assert j.status()["owner"] == "alice"
