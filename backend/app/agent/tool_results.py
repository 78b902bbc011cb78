"""What the agent's tools hand back to the model: the words for the caller, then on a line of its
own, in brackets, what to do with them; or, with nothing for the caller to hear, only what to do.
Failures the caller should hear are raised as livekit's `ToolError` with the same kind of text.
The local responder (local_responder.py) reads the words back with `words`."""

from __future__ import annotations

NO_ANSWER = (
    "The knowledge base has no answer to this question. Do not answer it yourself. "
    "Call request_supervisor_help with the caller's question now."
)


def kb_answer(answer: str) -> str:
    return f"{answer}\n(Tell the caller this answer. You may shorten or rephrase it; add nothing to it.)"


def say(text: str) -> str:
    return f"{text}\n(Say this to the caller, in these words.)"


def words(output: str) -> str | None:
    """The words for the caller in a tool's output; None when it holds none (an internal error)."""
    text, instruction, _ = output.partition("\n(")
    return text.strip() if instruction else None
