"""Live changes for consoles: the in-process feed, and the relay between API processes on PostgreSQL."""
