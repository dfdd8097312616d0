"""The ext_proc fuzzer of `bench.fuzz_extproc`: cases, oracle, service, run, report."""
