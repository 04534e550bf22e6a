"""The sandbox's domain: records, store, clock, money, lifecycle, payments, simulation and events.

Nothing here imports FastAPI or Starlette: the rules are the same whoever triggers them (a request,
a simulated partner, the test driver), and only :mod:`debitura_provider.sandbox.edge` speaks HTTP.
"""
