"""``blis serve``: the web app (roofline explorer, kernel validation, spot check, simulations) and its API."""

from __future__ import annotations

from blis.errors import BlisInputError


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve the web page and HTTP API (needs the 'web' extra)",
                       description="Serve the page at / and the HTTP API under /api (OpenAPI schema at /docs "
                       "and /openapi.json). Needs: pip install 'blis[web]'.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port, 1-65535 (default 8000)")
    p.add_argument("--reload", action="store_true", help="restart when the source changes (development)")
    p.set_defaults(handler=serve)


def serve(args) -> int:
    if not 1 <= args.port <= 65535:
        raise BlisInputError(f"port: must be in 1-65535, got {args.port}")
    try:
        import fastapi  # noqa: F401
        import plotly  # noqa: F401
        import uvicorn
    except ImportError:
        raise BlisInputError("serve: needs the web extra (pip install 'blis[web]')") from None
    uvicorn.run("blis.web.app:create_app", factory=True, host=args.host, port=args.port, reload=args.reload)
    return 0
