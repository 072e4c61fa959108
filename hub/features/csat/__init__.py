"""Customer satisfaction: the customer is asked for a 1-5 rating when an agent resolves the
conversation, and the answer is stored and thanked (survey.py)."""
