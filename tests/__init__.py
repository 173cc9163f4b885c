"""Test suites of backup-operator: unit (pure), integration (real control plane), e2e."""
