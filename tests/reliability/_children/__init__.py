"""Scripts the reliability tests run as separate processes (to kill them or run them side by side)."""
