"""Fails loudly when the uvicorn internals that gateway.serving.coalescing and
gateway.serving.connection_limits rely on move.

``CoalescingHttpToolsProtocol`` hands uvicorn's ``HttpToolsProtocol`` a wrapping
transport in ``connection_made`` and reads the protocol's ``loop``. Every transport method
uvicorn's HTTP code calls must be implemented by the wrapper itself: one that fell
through to ``asyncio.Transport``'s base class would raise ``NotImplementedError`` on a
live connection. If a test here fails after a uvicorn upgrade, read the new
``uvicorn/protocols/http/httptools_impl.py`` before raising the pin in pyproject.toml,
or serve with ``http_protocol: httptools`` meanwhile.

``LimitedHttpToolsProtocol`` (the base of both httptools choices) overrides parser
callbacks and connection events, and reads the protocol's and the request cycle's
attributes listed in its docstring; if those tests fail, serve with ``http_protocol: h11``
until ``connection_limits.py`` is brought up to date.

``gateway.serving.listening`` starts uvicorn as ``uvicorn.run`` does, to learn the port
bound: it overrides ``Server.startup``, reads ``Server.servers``, binds with
``Config.bind_socket`` and hands the socket to ``Multiprocess(config, sockets)``.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version

import uvicorn
from uvicorn import server as uvicorn_server
from uvicorn.config import Config
from uvicorn.protocols import utils
from uvicorn.protocols.http import flow_control, httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from gateway.serving.coalescing import CoalescingHttpToolsProtocol, CoalescingTransport
from gateway.serving.connection_limits import LimitedHttpToolsProtocol

# The uvicorn releases the fast path was tested against; pyproject.toml caps below the next.
TESTED_MINOR_RANGE = ((0, 51), (0, 54))


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


def test_listening_starts_uvicorn_as_uvicorn_run_does() -> None:
    run = inspect.getsource(uvicorn.run)
    assert "sock = config.bind_socket()" in run
    assert "Multiprocess(config, sockets=[sock]).run()" in run
    assert list(inspect.signature(Multiprocess).parameters) == ["config", "sockets"]
    startup = uvicorn_server.Server.startup
    assert list(inspect.signature(startup).parameters) == ["self", "sockets"]
    assert "self.servers = [server]" in inspect.getsource(startup)
    assert "self.started = True" in inspect.getsource(startup)
    assert "sys.exit(STARTUP_FAILURE)" in run


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


# What LimitedHttpToolsProtocol overrides: uvicorn must still call each of these.
OVERRIDDEN = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_headers_complete",
    "on_body",
    "on_message_complete",
    "on_response_complete",
    "shutdown",
)


def test_the_methods_the_limits_override_are_still_uvicorns() -> None:
    for name in OVERRIDDEN:
        assert name in vars(HttpToolsProtocol), f"HttpToolsProtocol.{name} is gone"
        assert name in vars(LimitedHttpToolsProtocol), f"{name} is no longer overridden"
    source = inspect.getsource(HttpToolsProtocol)
    # The parser calls the callbacks; a response's end calls on_response_complete; the
    # server calls shutdown() on each connection.
    assert "httptools.HttpRequestParser(self)" in source
    assert "on_response=self.on_response_complete" in source
    assert "connection.shutdown()" in inspect.getsource(uvicorn_server.Server.shutdown)


async def test_the_attributes_the_limits_read_are_still_there() -> None:
    protocol = HttpToolsProtocol(config=Config(app=_app), server_state=ServerState(), app_state={})
    attributes = ("connections", "cycle", "flow", "transport", "client", "loop", "pipeline")
    for name in (*attributes, "headers"):
        assert hasattr(protocol, name), f"HttpToolsProtocol has no {name} any more"
    # The head's parts as parsed, which give its size.
    assert "self.url += url" in inspect.getsource(HttpToolsProtocol.on_url)
    assert "self.headers.append((name, value))" in inspect.getsource(HttpToolsProtocol.on_header)
    cycle_init = inspect.getsource(RequestResponseCycle.__init__)
    for name in (
        "more_body",
        "response_started",
        "response_complete",
        "keep_alive",
        "disconnected",
        "message_event",
    ):
        assert f"self.{name} = " in cycle_init, f"RequestResponseCycle has no {name} any more"
    # The cycle drops what the app sends once it is marked disconnected.
    assert "if self.disconnected:" in inspect.getsource(RequestResponseCycle.send)
    assert "read_paused" in inspect.getsource(flow_control.FlowControl.__init__)


async def _app(scope: object, receive: object, send: object) -> None:
    """A stand-in ASGI app: the protocol is built, never served."""
