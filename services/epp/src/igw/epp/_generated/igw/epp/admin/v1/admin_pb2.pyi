from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListEndpointsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEndpointsResponse(_message.Message):
    __slots__ = ("endpoints", "staleness_threshold_seconds", "in_flight_tracked")
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    STALENESS_THRESHOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_TRACKED_FIELD_NUMBER: _ClassVar[int]
    endpoints: _containers.RepeatedCompositeFieldContainer[EndpointStatus]
    staleness_threshold_seconds: float
    in_flight_tracked: bool
    def __init__(self, endpoints: _Optional[_Iterable[_Union[EndpointStatus, _Mapping]]] = ..., staleness_threshold_seconds: _Optional[float] = ..., in_flight_tracked: _Optional[bool] = ...) -> None: ...

class EndpointStatus(_message.Message):
    __slots__ = ("name", "address", "port", "pod", "rank", "labels", "engine_type", "metrics", "metrics_age_seconds", "stale", "in_flight_requests", "in_flight_tokens")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_TYPE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    port: int
    pod: str
    rank: int
    labels: _containers.ScalarMap[str, str]
    engine_type: str
    metrics: EndpointMetrics
    metrics_age_seconds: float
    stale: bool
    in_flight_requests: int
    in_flight_tokens: int
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., pod: _Optional[str] = ..., rank: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., engine_type: _Optional[str] = ..., metrics: _Optional[_Union[EndpointMetrics, _Mapping]] = ..., metrics_age_seconds: _Optional[float] = ..., stale: _Optional[bool] = ..., in_flight_requests: _Optional[int] = ..., in_flight_tokens: _Optional[int] = ...) -> None: ...

class EndpointMetrics(_message.Message):
    __slots__ = ("waiting", "running", "kv_cache_usage", "active_adapters", "waiting_adapters", "max_active_adapters", "cache_block_size", "cache_num_blocks")
    WAITING_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    KV_CACHE_USAGE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    WAITING_ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    CACHE_BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CACHE_NUM_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    waiting: int
    running: int
    kv_cache_usage: float
    active_adapters: _containers.RepeatedScalarFieldContainer[str]
    waiting_adapters: _containers.RepeatedScalarFieldContainer[str]
    max_active_adapters: int
    cache_block_size: int
    cache_num_blocks: int
    def __init__(self, waiting: _Optional[int] = ..., running: _Optional[int] = ..., kv_cache_usage: _Optional[float] = ..., active_adapters: _Optional[_Iterable[str]] = ..., waiting_adapters: _Optional[_Iterable[str]] = ..., max_active_adapters: _Optional[int] = ..., cache_block_size: _Optional[int] = ..., cache_num_blocks: _Optional[int] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("path", "headers", "body")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    path: str
    headers: _containers.ScalarMap[str, str]
    body: bytes
    def __init__(self, path: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., body: _Optional[bytes] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("request_id", "model", "target_model", "priority", "candidates", "profiles", "primary_profile", "picked", "error", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PICKED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model: str
    target_model: str
    priority: int
    candidates: _containers.RepeatedScalarFieldContainer[str]
    profiles: _containers.RepeatedCompositeFieldContainer[ProfileExplanation]
    primary_profile: str
    picked: _containers.RepeatedScalarFieldContainer[str]
    error: ExplainError
    note: str
    def __init__(self, request_id: _Optional[str] = ..., model: _Optional[str] = ..., target_model: _Optional[str] = ..., priority: _Optional[int] = ..., candidates: _Optional[_Iterable[str]] = ..., profiles: _Optional[_Iterable[_Union[ProfileExplanation, _Mapping]]] = ..., primary_profile: _Optional[str] = ..., picked: _Optional[_Iterable[str]] = ..., error: _Optional[_Union[ExplainError, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class ExplainError(_message.Message):
    __slots__ = ("http_status", "code", "message", "body")
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    http_status: int
    code: str
    message: str
    body: str
    def __init__(self, http_status: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class ProfileExplanation(_message.Message):
    __slots__ = ("name", "endpoints", "filters", "scorers", "totals", "picked", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    SCORERS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    PICKED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    filters: _containers.RepeatedCompositeFieldContainer[FilterStep]
    scorers: _containers.RepeatedCompositeFieldContainer[ScorerColumn]
    totals: _containers.RepeatedScalarFieldContainer[float]
    picked: _containers.RepeatedScalarFieldContainer[str]
    error: str
    def __init__(self, name: _Optional[str] = ..., endpoints: _Optional[_Iterable[str]] = ..., filters: _Optional[_Iterable[_Union[FilterStep, _Mapping]]] = ..., scorers: _Optional[_Iterable[_Union[ScorerColumn, _Mapping]]] = ..., totals: _Optional[_Iterable[float]] = ..., picked: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ...) -> None: ...

class FilterStep(_message.Message):
    __slots__ = ("plugin", "remaining")
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    plugin: str
    remaining: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, plugin: _Optional[str] = ..., remaining: _Optional[_Iterable[str]] = ...) -> None: ...

class ScorerColumn(_message.Message):
    __slots__ = ("plugin", "type", "weight", "scores", "details")
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    plugin: str
    type: str
    weight: float
    scores: _containers.RepeatedScalarFieldContainer[float]
    details: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, plugin: _Optional[str] = ..., type: _Optional[str] = ..., weight: _Optional[float] = ..., scores: _Optional[_Iterable[float]] = ..., details: _Optional[_Iterable[str]] = ...) -> None: ...
