"""What the agent's tools hand back to the model: plain words a real LLM follows, with a fixed
prefix the local responder (app/agent/local_responder.py) reads."""
from __future__ import annotations

KB_ANSWER = "KB_ANSWER: "
NO_ANSWER = "NO_ANSWER: "
SAY = "SAY: "

NO_ANSWER_TEXT = (
    NO_ANSWER + "the knowledge base has no answer to this question. Do not answer it yourself. "
    "Call request_supervisor_help with the caller's question now."
)


def kb_answer(answer: str) -> str:
    return f"{KB_ANSWER}{answer}\n(Tell the caller this answer. You may shorten or rephrase it; add nothing to it.)"


def say(text: str) -> str:
    return f"{SAY}{text}\n(Say this to the caller, in these words.)"


def payload(output: str, prefix: str) -> str | None:
    """The text after `prefix` (up to the instruction line), or None when the output is another kind."""
    if not output.startswith(prefix):
        return None
    return output[len(prefix):].split("\n(", 1)[0].strip()
