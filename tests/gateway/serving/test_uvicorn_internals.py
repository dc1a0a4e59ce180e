"""Fails loudly when the uvicorn internals that gateway.serving.coalescing relies on move.

``CoalescingHttpToolsProtocol`` hands uvicorn's ``HttpToolsProtocol`` a wrapping
transport in ``connection_made`` and reads the protocol's ``loop``. Every transport method
uvicorn's HTTP code calls must be implemented by the wrapper itself: one that fell
through to ``asyncio.Transport``'s base class would raise ``NotImplementedError`` on a
live connection. If a test here fails after a uvicorn upgrade, read the new
``uvicorn/protocols/http/httptools_impl.py`` before raising the pin in pyproject.toml,
or serve with ``http_protocol: httptools`` meanwhile.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version

from uvicorn.protocols import utils
from uvicorn.protocols.http import flow_control, httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.serving.coalescing import CoalescingHttpToolsProtocol, CoalescingTransport

# The uvicorn releases the fast path was tested against; pyproject.toml caps below the next.
TESTED_MINOR_RANGE = ((0, 30), (0, 54))


def _calls_on_transport() -> set[str]:
    sources = "".join(inspect.getsource(module) for module in (httptools_impl, utils, flow_control))
    return set(re.findall(r"transport\.([a-z_]+)\(", sources))


def test_uvicorn_is_a_tested_release() -> None:
    major, minor = (int(part) for part in version("uvicorn").split(".")[:2])
    low, high = TESTED_MINOR_RANGE
    assert low <= (major, minor) <= high, (
        f"uvicorn {version('uvicorn')} is outside the tested range {low}-{high}: check "
        "gateway/serving/coalescing.py against it (this module's docstring says how)"
    )


def test_every_transport_method_uvicorn_calls_is_implemented_by_the_wrapper() -> None:
    called = _calls_on_transport()
    assert {"write", "close", "is_closing", "get_extra_info"} <= called  # the scan still works
    missing = sorted(name for name in called if name not in vars(CoalescingTransport))
    assert not missing, (
        f"uvicorn now calls transport.{', transport.'.join(missing)}, which "
        "CoalescingTransport does not wrap: add them, or serve with http_protocol=httptools"
    )


def test_the_protocol_takes_the_transport_in_connection_made_and_has_a_loop() -> None:
    parameters = list(inspect.signature(HttpToolsProtocol.connection_made).parameters)
    assert parameters == ["self", "transport"]
    source = inspect.getsource(HttpToolsProtocol)
    assert "self.transport = transport" in source
    assert "self.loop = " in inspect.getsource(HttpToolsProtocol.__init__)
    assert issubclass(CoalescingHttpToolsProtocol, HttpToolsProtocol)
