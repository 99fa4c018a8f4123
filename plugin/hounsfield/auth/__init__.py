"""Who may do what: users, passwords, tokens, sessions, the permission table and the gate."""
