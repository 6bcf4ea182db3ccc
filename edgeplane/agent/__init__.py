"""Agent: runs on every edge host; user-data, identity, registration, install, A/B upgrades."""
