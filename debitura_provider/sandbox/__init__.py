"""A faithful local stand-in for Debitura's Collection Partner API (managed cases included).

    from debitura_provider.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(port=0)) as server:
        server.base_url, server.api_key, server.partner_keys, server.portal_url

Or from a shell: ``debitura-sandbox --port 8642 --api-key sandbox-key``. See docs/sandbox.md.
"""

from debitura_provider.sandbox.config import DEFAULT_PARTNERS, PartnerSpec, RateLimitSettings, SandboxConfig
from debitura_provider.sandbox.server import SandboxServer

__all__ = ["DEFAULT_PARTNERS", "PartnerSpec", "RateLimitSettings", "SandboxConfig", "SandboxServer"]
