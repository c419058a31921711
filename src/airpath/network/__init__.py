"""Street networks: import, rules, elevation and the on-disk format."""
