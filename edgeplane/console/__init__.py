"""Console: the central management plane (packs, profiles, tokens, edge hosts, clusters)."""
