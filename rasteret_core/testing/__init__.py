"""Local stand-ins for cloud services, for the demo, the tests and the benchmarks."""
