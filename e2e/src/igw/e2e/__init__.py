"""igw local gateway and end-to-end support."""
