"""The audit trail: who did what to which patient data, append-only and hash-chained."""
