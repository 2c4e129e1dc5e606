"""The FastAPI baseline for bench/http/run.sh: the two routes lossd serves.

    GET /healthz       -> {"status": "ok"}  (application/json)
    GET /openapi.yaml  -> the repository's openapi.yaml, as bytes  (application/yaml)

Run directly, it binds 127.0.0.1 on a free port (or BENCH_FASTAPI_PORT),
prints `fastapi listening on http://127.0.0.1:PORT` on stdout and serves with
uvicorn: one worker process, uvloop + httptools, log level warning, access
log off. The app object also works with the uvicorn CLI:

    uvicorn fastapi_app:app --app-dir bench/http --port 8081
"""

import os
import sys
from pathlib import Path

# bench/ holds the shared server start-up (fastapi_serve.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fastapi_serve import serve  # noqa: E402

from fastapi import FastAPI
from fastapi.responses import Response

OPENAPI_PATH = Path(
    os.environ.get("BENCH_OPENAPI", Path(__file__).resolve().parents[2] / "openapi.yaml")
)
OPENAPI_BYTES = OPENAPI_PATH.read_bytes()

# FastAPI's own /docs, /redoc and /openapi.json are switched off: the baseline
# serves the same two routes as lossd and nothing else.
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


@app.get("/openapi.yaml")
async def openapi_yaml():
    return Response(content=OPENAPI_BYTES, media_type="application/yaml")


def main() -> None:
    serve(app)


if __name__ == "__main__":
    sys.exit(main())
