"""The typed API (pydantic models of spec and status) and the CRD generator that renders it."""
