"""Reference data and privacy rules every package may import: the towns, phone and ID masking.

Imports nothing from ``bot/``; ``matching/`` depends on it, never on the application."""
