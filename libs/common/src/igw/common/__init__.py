"""igw shared library: what both ext_proc services stand on."""
