"""Benchmarks of nxup against plain boto3 on the local sandbox (not part of the test suite)."""
