"""Forge: installer ISOs, site user-data ISOs, content bundles, cluster definitions, capsules."""
