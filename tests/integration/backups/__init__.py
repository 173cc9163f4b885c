"""Integration tests of the operator itself, by feature, each test in its own namespace."""
