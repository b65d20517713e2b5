"""The `conference` bystander: a multi-party WebRTC meeting relayed through coturn."""
