"""The HTTP face of the reward service: server, client, launcher, metrics, CLI options."""
