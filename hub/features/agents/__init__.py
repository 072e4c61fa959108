"""Agents and teams: admins add and change them; each agent sets their own name, language,
presence (online, away, offline: auto-assignment follows it) and password."""
