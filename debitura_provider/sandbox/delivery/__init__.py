"""Webhook delivery: signing, sending, retrying and disabling, on the sandbox's event loop."""
