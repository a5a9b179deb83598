"""Benchmark harness: realistic mailboxes in a real Dovecot, the product against baselines."""
