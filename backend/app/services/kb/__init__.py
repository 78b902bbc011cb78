"""The knowledge base: entries and their audit (`service`), search and candidate assembly, the
answer-or-escalate decision (`decision`, with the `judge` cross-encoder), sentence embeddings and
the in-memory index, the optional per-business lexicon and the optional LLM verifier."""
