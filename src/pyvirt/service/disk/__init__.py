"""Domain disks: attach/detach, start-time checks, inspection, benchmarks."""
