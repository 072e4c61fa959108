"""One customer across channels: contacts merged into one person, the person shown beside a
conversation (customers.py), and the history of all their conversations (routes.py)."""
