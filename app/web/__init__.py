"""The web layer: FastAPI routers, server-rendered pages and their static files."""
