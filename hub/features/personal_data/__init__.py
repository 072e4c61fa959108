"""Personal data (PIPL, GDPR): a contact exported or erased on request, and resolved
conversations deleted after the retention period (records.py, its SQL in store.py)."""
