"""Reproduces, evaluates and exports the fingerprint model. The app never imports this."""
