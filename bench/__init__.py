"""Benchmarks: each measures caseconf against a baseline in the same run (`python -m bench`)."""
