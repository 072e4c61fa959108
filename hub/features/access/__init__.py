"""Who may use the inbox: agents log in and out (repeated failures lock an email out), and
admins manage API tokens for integrations and read the audit log."""
