#!/usr/bin/env bash
# Runs an example gateway: a PKI made on the spot (openssl), a small echo
# upstream, and certgate in front of it on 127.0.0.1:8443 (CG_LISTEN to
# change). Ctrl-C stops both.
set -euo pipefail
bin=${1:-build/certgate}
bin=$(realpath "$bin")
listen=${CG_LISTEN:-127.0.0.1:8443}
dir=${CG_EXAMPLE_DIR:-certgate-example}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
cd "$dir"
umask 077
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
if [ ! -f ca.pem ]; then
  ec ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=certgate example CA" \
    -days 3650 -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem
  ec server.key
  openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -days 825 \
    -set_serial 0x$(openssl rand -hex 16) -out server.pem -extfile <(printf \
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n') 2>/dev/null
  ec alice.key
  openssl req -new -key alice.key -subj "/O=Example/CN=alice" -out alice.csr
  openssl x509 -req -in alice.csr -CA ca.pem -CAkey ca.key -days 365 \
    -set_serial 0x$(openssl rand -hex 16) -out alice.pem -extfile <(printf \
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=email:alice@example.com\n') 2>/dev/null
  rm -f ./*.csr
fi
rm -f upstream.port
python3 "$here/example-upstream.py" upstream.port &
up=$!
trap 'kill $up 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s upstream.port ] && break; sleep 0.05; done
cat > certgate.json <<JSON
{
  "ports_file": "ports.json",
  "pid_file": "certgate.pid",
  "trust": { "example": { "ca_files": ["ca.pem"] } },
  "listeners": [
    { "name": "web", "kind": "https", "listen": "$listen",
      "certificates": [ { "cert": "server.pem", "key": "server.key" } ],
      "client_auth": { "enabled": true, "mode": "optional", "trust": "example" },
      "routes": [
        { "path": "/", "upstream": "http://127.0.0.1:$(cat upstream.port)" },
        { "path": "/private", "upstream": "http://127.0.0.1:$(cat upstream.port)",
          "require_verified": true,
          "allow": { "email_domain": ["example.com"] } } ] } ]
}
JSON
port=${listen##*:}
cat <<TXT
certgate example gateway on https://$listen (files in $dir/)
Try, from $(pwd):
  curl --cacert ca.pem --cert alice.pem --key alice.key https://localhost:$port/private
  curl --cacert ca.pem https://localhost:$port/            # anonymous: X-Client-Verify: NONE
  curl --cacert ca.pem https://localhost:$port/private     # 403
Reload after editing certgate.json:  $bin reload -c certgate.json
TXT
"$bin" serve -c certgate.json
