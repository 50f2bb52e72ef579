"""Benchmarks with their own data generators; not part of the test run."""
