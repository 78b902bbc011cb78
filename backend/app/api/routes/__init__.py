"""The HTTP API, one module per resource (shared/CONTRACT.md)."""

from app.api.routes import events, help_requests, knowledge_base, me, notifications, operations, sms, stats

routers = [r.router for r in (help_requests, knowledge_base, notifications, events, stats, operations, me, sms)]
