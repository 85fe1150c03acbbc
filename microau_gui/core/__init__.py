"""Plain types and the AU catalogue.

Owns: the AU catalogue (au), the AU-string parser (aus), the shared value types (types) and
`UserError` (errors). Imports nothing of ours and nothing heavier than the stdlib.
"""
