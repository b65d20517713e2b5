"""The `web` bystander: an HTTPS site on a few hostnames, loaded by curl."""
