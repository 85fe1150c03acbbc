"""Plain types and the AU catalogue. Imports nothing of ours and nothing heavier than the stdlib."""
