"""Canned responses: the replies agents insert instead of typing them again."""
