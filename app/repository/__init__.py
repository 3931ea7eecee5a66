"""The model repository: its layout, build lock, atomic writes and manifest (stdlib + pydantic).

The build (app/building, app/nets) writes it; the runtime (app/inference) and the web layer read
it; Triton can serve it as is.
"""
