"""blis in the browser: the FastAPI app (`blis serve`), its page, and the HTML report of a finished run.

Needs the `web` extra (fastapi, uvicorn, plotly); nothing here is imported by the simulator itself."""
