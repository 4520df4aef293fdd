"""Safety building blocks the admission policy calls: blocked terms, moderation, redaction of secrets,
the refusal audit log and signed image URLs. Each module is small and imports nothing heavy."""
