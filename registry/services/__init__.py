"""Services: the registry's operations. Each takes the viewer first, asks the policy, and flushes.

They never commit (the request or command boundary does) and raise domain errors from
``registry.errors``.
"""
