"""Benchmarks: they print their figures (recorded in bench/README.md); tests never time anything."""
