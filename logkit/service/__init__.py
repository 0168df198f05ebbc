"""``logkit serve``: the registry's contracts as HTTP endpoints, writing to the same store.

Modules: ``config`` (what a worker needs to know), ``intake`` (request bodies -> envelopes,
dead letters and per-event answers; no HTTP), ``writer`` (the worker's store writer, syncing and
rotation), ``openapi`` (the document generated from the registry), ``metrics`` (Prometheus),
``protocol`` (uvicorn's HTTP protocol with a header timeout) and ``app`` (the FastAPI app).
Only ``logkit.commands.serve`` imports this package, so ``logkit --help`` never loads FastAPI.
"""
