"""CPU, NUMA and memory tuning, the NUMA advisor and the capacity planner."""
