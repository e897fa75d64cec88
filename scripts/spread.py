#!/usr/bin/env python3
"""An HTTP reverse proxy that sends each request to the next of several nodes in turn.

Used to run a client suite against a cluster region with its requests spread over the nodes:
    scripts/spread.py 8000 http://127.0.0.1:8001 http://127.0.0.1:8002 http://127.0.0.1:8003
Each request goes whole to one node (round robin); the answer comes back as the node sent it.
"""

import http.client
import itertools
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

NODES = [urlsplit(url) for url in sys.argv[2:]]
TURN = itertools.cycle(range(len(NODES)))
TURN_LOCK = threading.Lock()
LOCAL = threading.local()
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def connection(index):
    """This thread's kept-alive connection to node `index`."""
    pool = getattr(LOCAL, "pool", None)
    if pool is None:
        pool = LOCAL.pool = {}
    if index not in pool:
        node = NODES[index]
        pool[index] = http.client.HTTPConnection(node.hostname, node.port, timeout=120)
    return pool[index]


class Spread(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        with TURN_LOCK:
            index = next(TURN)
        for attempt in range(2):
            upstream = connection(index)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                upstream.close()
                LOCAL.pool.pop(index, None)
                if attempt == 1:
                    self.send_error(502)
                    return
        self.send_response_only(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Spread).serve_forever()
