"""Serves a FastAPI baseline app the same way for every benchmark (bench/http, bench/loss).

Binds 127.0.0.1 on BENCH_FASTAPI_PORT (default 0: a free port) itself, so that the
chosen port can be reported, prints `fastapi listening on http://127.0.0.1:PORT` on
stdout, and runs uvicorn with one worker, uvloop + httptools, log level warning and
the access log off.
"""

import os
import socket


def serve(app) -> None:
    import uvicorn

    port = int(os.environ.get("BENCH_FASTAPI_PORT", "0"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        workers=1,
        log_level="warning",
        access_log=False,
        backlog=2048,
    )
    print(f"fastapi listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
