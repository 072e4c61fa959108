"""Unrecognized messages become training data: designers review what the bot did not
understand and label it with an intent, for the next training (review.py, routes.py)."""
