"""The application's model layer. Never imports Qt (checked by import-linter)."""
