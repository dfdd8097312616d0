"""The Envoy ext_proc serving core both igw services run on.

A service supplies an `ExchangeFactory`; `ExtProcServicer` handles Envoy's message sequencing
(full-duplex and buffered), errors, tracing and cleanup. See `_stream` for the protocol rules.
"""

from igw.common.extproc._exchange import (
    PASS_THROUGH,
    Exchange,
    ExchangeFactory,
    HttpRequest,
    ImmediateAnswer,
    PassThroughExchange,
    RequestVerdict,
    StreamInfo,
)
from igw.common.extproc._servicer import EXT_PROC_SERVICE, ExtProcServicer
from igw.common.extproc._stream import Stream

__all__ = [
    "EXT_PROC_SERVICE",
    "PASS_THROUGH",
    "Exchange",
    "ExchangeFactory",
    "ExtProcServicer",
    "HttpRequest",
    "ImmediateAnswer",
    "PassThroughExchange",
    "RequestVerdict",
    "Stream",
    "StreamInfo",
]
