"""Benchmarks: each module has `main()`, prints its numbers and writes bench/results/<name>.json."""
