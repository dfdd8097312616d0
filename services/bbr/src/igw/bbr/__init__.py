"""igw Body-Based Router."""
