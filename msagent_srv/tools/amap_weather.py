"""Weather from the AMap (高德) web service API: live conditions for a city name or adcode."""

from __future__ import annotations

import os
from typing import Any

import aiohttp

from .. import netguard
from .base import Tool, ToolError

DEFAULT_BASE_URL = "https://restapi.amap.com"


class AmapWeather(Tool):
    """tool_cfg: `token` (else env AMAP_TOKEN), `base_url` (else env AMAP_BASE_URL), `timeout` (s).
    tool_cfg comes from callers: its base URL goes through the process's guard (netguard), so it must name a
    public host unless the operator allows others; AMAP_BASE_URL is the operator's and always allowed."""

    name = "amap_weather"
    description = "获取对应城市的天气数据 (current weather of a Chinese city, by name or adcode)"
    parameters = [
        {
            "name": "location",
            "type": "string",
            "description": "城市/区具体名称，如`北京市海淀区`请描述为`海淀区`",
            "required": True,
        }
    ]
    trusted = True
    needs_network = True  # AMap's web API

    async def call(self, params: str | dict[str, Any], **kwargs: Any) -> str:
        location = str(self.parse_params(params)["location"]).strip()
        # the operator's key goes to the operator's AMap only: never to a base_url a caller chose
        token = self.cfg.get("token") or (None if self.cfg.get("base_url") else os.environ.get("AMAP_TOKEN"))
        if not token:
            raise ToolError(
                "no AMap key: set tool_cfg.token or the AMAP_TOKEN environment variable "
                "(used only with the operator's AMap, not a tool_cfg.base_url)"
            )
        configured = os.environ.get("AMAP_BASE_URL") or DEFAULT_BASE_URL  # the operator's: trusted
        base = str(self.cfg.get("base_url") or configured).rstrip("/")
        timeout = aiohttp.ClientTimeout(total=float(self.cfg.get("timeout", 10)), sock_connect=10)
        guard = netguard.current().trusting(configured)
        try:
            await guard.check_url(base)
        except OSError as exc:  # InvalidUrl, PrivateAddressRefused, a name that does not resolve
            raise ToolError(f"AMap base URL refused: {exc}") from None
        async with guard.session(timeout=timeout) as session:
            adcode = location if location.isdigit() else await self._adcode(session, base, token, location)
            data = await self._get(session, f"{base}/v3/weather/weatherInfo", {"city": adcode, "key": token})
        lives = data.get("lives") or []
        if not lives:
            raise ToolError(f"no weather data for {location}")
        live = lives[0]
        return f"{live.get('city', location)}的天气是{live.get('weather')}温度是{live.get('temperature')}度。"

    async def _adcode(self, session: aiohttp.ClientSession, base: str, token: str, name: str) -> str:
        data = await self._get(
            session, f"{base}/v3/config/district", {"keywords": name, "subdistrict": "0", "key": token}
        )
        districts = data.get("districts") or []
        if not districts:
            raise ToolError(f"unknown location: {name}")
        return str(districts[0]["adcode"])

    @staticmethod
    async def _get(session: aiohttp.ClientSession, url: str, query: dict[str, str]) -> dict[str, Any]:
        try:
            async with session.get(url, params=query) as response:
                if response.status != 200:
                    raise ToolError(f"AMap answered HTTP {response.status}")
                data = await response.json(content_type=None)
        except netguard.RedirectRefused as exc:
            raise ToolError(f"AMap refused: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            raise ToolError(f"AMap unreachable: {exc.os_error}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ToolError(f"AMap unreachable: {exc.__class__.__name__}") from None
        if str(data.get("status")) != "1":
            raise ToolError(f"AMap error: {data.get('info', 'unknown')}")
        return data
