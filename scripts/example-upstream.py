#!/usr/bin/env python3
"""A small upstream for the example gateway: answers every request with the
identity headers certgate sent, as JSON. Usage: example-upstream.py PORTFILE"""
import http.server
import json
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        ident = {k: v for k, v in self.headers.items()
                 if k.lower().startswith(("x-client", "client-cert",
                                          "x-forwarded"))}
        body = json.dumps({"path": self.path, "identity": ident},
                          indent=2).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, fmt, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
