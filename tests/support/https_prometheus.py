"""A tiny HTTPS endpoint that answers like a Prometheus with no alerts and no
rules, in the shape of each endpoint asked, for the TLS tests (tests/tls.rs).
Usage: https_prometheus.py CERT KEY [CLIENT_CA]; prints the port. With
CLIENT_CA, a client must present a certificate signed by it, as Prometheus
asks with `client_auth_type: RequireAndVerifyClientCert`."""
import http.server
import ssl
import sys
from urllib.parse import urlparse

EMPTY = {
    "/api/v1/alerts": b'{"status":"success","data":{"alerts":[]}}',
    "/api/v1/query": b'{"status":"success","data":{"resultType":"vector","result":[]}}',
    "/api/v1/rules": b'{"status":"success","data":{"groups":[]}}',
}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = EMPTY.get(urlparse(self.path).path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
if len(sys.argv) > 3:
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
