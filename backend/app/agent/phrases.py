"""What the receptionist says in its own words: greetings, escalations and follow-ups.

Everything else it says is the knowledge base's or a supervisor's answer, or the model's small talk.
"""

from __future__ import annotations

GREETING = "Thank you for calling {salon}. How can I help you today?"
CHECKING = "Let me check with my supervisor and get back to you."
WILL_TEXT = "I've passed your question on, and I'll text you the answer at {contact} as soon as they reply."
ASK_CONTACT = "What phone number can I text the answer to?"
CONTACT_SAVED = "Thank you. I'll text you at {contact} as soon as my supervisor replies."
CONTACT_UNCLEAR = "Sorry, I didn't catch a full phone number. Could you say it again, digit by digit?"
ALREADY_ASKED = "I've already asked my supervisor about that; you'll hear back as soon as they reply."
CANNOT_REACH = (
    "I'm sorry, I can't reach my supervisor right now. Please call us back a little later and we'll help you then."
)
LIVE_ANSWER = "Good news — my supervisor says: {answer}"
LIVE_UNRESOLVED = "I'm sorry, my supervisor couldn't find an answer to your question yet. Please call us again and we'll do our best to help."
ANSWER_TEXTED = "My supervisor has replied, and the answer is on its way to you by text."
SAY_AGAIN = "Sorry, could you say that again?"
