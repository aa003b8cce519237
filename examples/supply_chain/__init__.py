"""The supply-chain example: forecast demand, decide reorders, escalate anomalies, order."""
