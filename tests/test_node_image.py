"""`msagent-srv build-image` from the repo's Dockerfile, on a local base image (no registry needed)."""

from __future__ import annotations

from .helpers import BuiltImage, ServiceProcess
from .service_calls import RENEW, create_running, post, renew


def test_dockerfile_build_on_a_local_base_image_serves_tools(
    manager: ServiceProcess, services_image: BuiltImage
) -> None:
    # the one Dockerfile makes an image that also hosts tools
    output = services_image.build_output
    assert "Step" in output and "pip" in output  # progress is shown
    assert f"built {services_image.tag}" in output
    reply = post(
        manager,
        "/create_tool_service",
        tool_name="RenewInstance",
        tenant_id="df",
        tool_image=services_image.tag,
    )
    assert reply.status_code == 200
    create_running(manager, "RenewInstance", "df")
    assert renew(manager, "df") == RENEW
