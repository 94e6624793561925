"""Benchmarks of the gateway against Radicale's own ``multifilesystem`` storage (issue 4).

Run ``python benchmarks/run.py`` from the project root; results are in docs/performance.md.
"""
