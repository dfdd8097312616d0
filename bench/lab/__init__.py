"""The benchmark lab: igw against the routers users would otherwise run, on a simulated fleet.

`python -m bench.lab --help`; the method is in `bench.lab.cli`'s docstring and in every report.
"""
