"""A help request's life: created (or attached to the same question pending), answered or timed out
exactly once, and the seam to a caller still on the line."""
