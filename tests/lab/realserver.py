#!/usr/bin/env python3
"""A lab real server: names itself and the local address each connection arrived at.

HTTP on port 80 (GET /?size=N appends N filler bytes) and a line echo on port 7. In DR
mode the local address must be the VIP: the director only rewrote MAC addresses.
Usage: realserver.py NAME
"""
import http.server
import socket
import socketserver
import sys
import threading
from urllib.parse import parse_qs, urlparse

NAME = sys.argv[1]


def local_name(sock):
    """The connection's local address as "ip:port" ("[ip]:port" for IPv6)."""
    host, port = sock.getsockname()[:2]
    if host.startswith("::ffff:"):
        host = host[len("::ffff:"):]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Http(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        size = int(parse_qs(urlparse(self.path).query).get("size", ["0"])[0])
        body = f"{NAME} {local_name(self.connection)}\n".encode() + b"x" * size
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        local = local_name(self.connection)
        for line in self.rfile:
            self.wfile.write(f"{NAME} {local} ".encode() + line)


class Threading(socketserver.ThreadingTCPServer):
    # Dual stack: IPv4 clients arrive as ::ffff:a.b.c.d.
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True


class HttpServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def main():
    echo = Threading(("::", 7), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    http_server = HttpServer(("::", 80), Http)
    print(f"{NAME} listening", flush=True)
    http_server.serve_forever()


if __name__ == "__main__":
    main()
