"""The `dns` bystander: ordinary names resolved through the inside resolver."""
