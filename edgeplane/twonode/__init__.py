"""Two-node HA: PostgreSQL leader/follower pair with liveness probes, promotion and rejoin."""
