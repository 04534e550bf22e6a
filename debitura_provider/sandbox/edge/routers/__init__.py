"""One router per resource of the Collection Partner API, plus the sandbox's own HTML portal."""
