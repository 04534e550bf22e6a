"""``make bench``: the figures behind the README's performance section, measured against a local sandbox."""
