"""The OpenAI-compatible test-time-scaling proxy (``autotts serve``); needs the ``serve`` extra."""

from autotts.online.proxy.app import create_app
from autotts.online.proxy.config import KEYS_ENV, ProxyConfig, RequestError, load_keys

__all__ = ["KEYS_ENV", "ProxyConfig", "RequestError", "create_app", "load_keys"]
