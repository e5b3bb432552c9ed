"""The HTTP side of devhost: routes, request/response conversion, keys, the aiohttp server."""
