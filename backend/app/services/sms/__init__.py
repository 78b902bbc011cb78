"""Texts with callers: their numbers, the words of each text, the acknowledgement on escalation, and
the texts callers send in. The outbox's SMS sink (services/outbox/sms.py) sends what is written."""

# `answered_by` of a request a caller texted in and the knowledge base answered at once: no
# supervisor was asked, so the overview counts it as a KB answer, not as an escalation.
ANSWERED_BY_KB = "knowledge base"
