"""Customer service: triage support tickets, answer, update the CRM, escalate, reply."""
