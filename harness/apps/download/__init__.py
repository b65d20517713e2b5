"""The `download` bystander: a software update over HTTPS, verified by its SHA-256."""
