"""igw's benchmarks: figures measured in one run and written to `bench/results/`.

Each benchmark is a module run from the repository root:

* `python -m bench.lab` (`make bench`, `make bench-quick`): igw against other routers on a
  simulated fleet, then the cost benchmarks below as sub-steps;
* `python -m bench.epp_cost` (`make bench-epp`): the EPP's CPU per request, added latency,
  scheduling time, scraping CPU and added TTFT;
* `python -m bench.bbr_cpu` (`make bench-bbr`): the BBR's CPU per request against a trivial
  echo ext_proc;
* `python -m bench.epp_streaming`: the EPP's CPU per streamed response, lean vs compatible;
* `python -m bench.sim_capacity`: the simulator's CPU per request with 8 pods and 200 streams;
* `python -m bench.epp_failover` (`make bench-failover`): how long two EPP replicas with leader
  election take to have the standby ready after the leader dies or stops;
* `python -m bench.flow_control` (`make bench-flow-control`): flow control off vs on on an
  overloaded local gateway: p90 TTFT per priority, 429/503 counts, the EPP's CPU with a full
  queue.

What they share: `_load`, the one load generator (closed and open loop, whole and streamed
answers); `_cpu`, per-process CPU accounting; `_errors`, the one exception tree; `_paths`, the
repository root that results name their paths and commands against.
"""
