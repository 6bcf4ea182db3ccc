-- A QR approval may name a cluster pool; the host joins it on its first heartbeat.
ALTER TABLE hosts ADD COLUMN pending_join TEXT;
