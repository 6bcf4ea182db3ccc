"""Local mode: per-host Local UI and API for air-gapped sites (not built yet)."""
