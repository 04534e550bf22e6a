"""The HTTP edge: the FastAPI app, its routers and dependencies, error handlers, and the auth, rate-limit,
idempotency and fault middleware. The only part of the sandbox that imports FastAPI or Starlette.
"""
