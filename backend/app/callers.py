"""What the agent and the backend agree on about callers, beside the HTTP contract (the agent
imports no domain code: this module is shared by both)."""

# The name the agent gives a caller who did not say theirs (the contract requires a name). It is
# never said back to the caller.
UNKNOWN_CALLER = "Phone caller"
