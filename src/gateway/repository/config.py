"""A model's ``config.yaml``: runtime options, version policy and validation switches."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from backends.base import RuntimeOptions
from gateway.batching.policy import (
    DEFAULT_DISPATCH_AHEAD_MS,
    DEFAULT_INLINE_MAX_MS,
    DEFAULT_INSTANCES,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_QUEUE_DELAY_MS,
    DEFAULT_MAX_QUEUE_SIZE,
    BatchPolicy,
)
from gateway.repository.confinement import (
    OutsideModelDirectory,
    confined_path,
)
from gateway.repository.declared import Declaration
from gateway.repository.placement import CudaConfig, RemoteConfig
from gateway.repository.section import ConfigSection
from gateway.repository.triton_config import PBTXT_FILE, map_triton, read_pbtxt
from gateway.repository.triton_fields import TritonConfigError
from gateway.repository.versions import LABEL_PATTERN, parse_version
from gateway.repository.warmup_config import WarmupConfig
from gateway.settings import LimitRule, unique_rule_names
from gateway.validation import describe_errors

CONFIG_FILE = "config.yaml"
Label = Annotated[str, Field(pattern=f"^{LABEL_PATTERN}$")]
"""A version label: a lower-case letter, then up to 31 lower-case letters, digits, _ or -."""
ROUTING_FIELDS = frozenset({"version_labels", "traffic", "version_policy", "limits"})
"""Fields that only choose versions, route or admit requests: changing them reloads no
version."""

# Short names users may write in a config; anything else must be a full provider name.
_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class ConfigError(Exception):
    """A model's config file is unreadable or invalid; the message says where and why."""


class LatestVersions(ConfigSection):
    """Serve the ``latest`` highest-numbered versions."""

    latest: Annotated[int, Field(ge=1)]
    """How many of the highest versions to serve."""


class SpecificVersions(ConfigSection):
    """Serve exactly the listed versions."""

    specific: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    """Version numbers to serve."""


VersionPolicy = Literal["all"] | LatestVersions | SpecificVersions


class BatchingConfig(ConfigSection):
    """How requests for one model version are queued and merged (docs/batching.md)."""

    enabled: bool = True
    """Merge concurrent requests into one backend call; false runs one request per call."""
    max_batch_size: Annotated[int, Field(ge=1, le=65536)] = DEFAULT_MAX_BATCH_SIZE
    """Most rows in one backend call; a request with more rows is split into parts."""
    max_queue_delay_ms: Annotated[float, Field(ge=0, le=10_000)] = DEFAULT_MAX_QUEUE_DELAY_MS
    """Longest a request waits for company while another batch is running. An idle model
    never waits: the first request is dispatched at once."""
    max_queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_MAX_QUEUE_SIZE
    """Requests that may wait per version; beyond it the answer is 503 with Retry-After."""
    preferred_batch_sizes: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    """Batch sizes the model runs fastest at; a batch is cut to the largest one reachable
    with whole requests (unless it is full)."""
    dispatch_ahead_ms: Annotated[float, Field(ge=0, le=10_000)] = DEFAULT_DISPATCH_AHEAD_MS
    """Backend time, in batches that cannot grow any more (full, or batching off), handed to
    the runtime's threads beyond the running batches, so that they never wait for the event
    loop between two calls; 0: none. Such a batch has passed its deadline check."""
    inline_max_ms: Annotated[float, Field(ge=0, le=100)] = DEFAULT_INLINE_MAX_MS
    """A batch whose backend call is measured to take at most this long runs on the event
    loop instead of the runtime's thread, saving the hand-over (about 0.2 ms); the loop is
    blocked that long at most. 0: every batch goes to the thread (docs/batching.md)."""
    default_timeout_ms: Annotated[float, Field(gt=0)] | None = 30_000.0
    """Deadline of a request that names none (``parameters.timeout`` or the
    ``X-Request-Timeout-Ms`` header); null: no deadline."""

    @field_validator("preferred_batch_sizes")
    @classmethod
    def _sorted_unique(cls, sizes: list[int]) -> list[int]:
        return sorted(set(sizes))


class StickyHeader(ConfigSection):
    """Keep a caller on one version by the value of a request header."""

    header: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]
    """The header whose value is hashed (case-insensitive name), such as ``X-User-Id``."""


class TrafficConfig(ConfigSection):
    """How the unversioned routes share requests between versions."""

    split: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]]
    """Weight by version label or version number, such as ``{stable: 95, canary: 5}``.
    A target with no ready version takes no share; its weight goes to the others."""
    sticky: Literal["subject"] | StickyHeader | None = None
    """Keep one caller on one version: ``subject`` (the token's subject) or
    ``{header: X-User-Id}``. A request without that key is routed at random by weight."""

    @field_validator("split", mode="before")
    @classmethod
    def _keys_as_text(cls, split: Any) -> Any:
        # YAML reads `{2: 5}` with an integer key: version numbers are keys too.
        if isinstance(split, dict):
            return {str(key): weight for key, weight in split.items()}
        return split

    @field_validator("split")
    @classmethod
    def _some_weight(cls, split: dict[str, int]) -> dict[str, int]:
        if sum(split.values()) == 0:
            raise ValueError("needs at least one target with a weight above 0")
        return split


class ModelConfig(ConfigSection):
    """Everything ``models/<name>/config.yaml`` may set; every field has a default."""

    execution_providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    """Execution providers in order of preference (``cuda``, ``cpu`` or full ONNX Runtime
    names). Unavailable ones are skipped with a warning; CPU is always the last resort."""
    when_provider_unavailable: Literal["fallback", "fail"] = "fallback"
    """When the first execution provider asked for cannot run the model (not in this
    onnxruntime build, no GPU, missing libraries): ``fallback`` runs it on the next one
    (the CPU at last) with one warning and ``tensorgate_execution_provider_fallback`` at 1;
    ``fail`` fails the load, so the version never serves."""
    remote: RemoteConfig | None = None
    """Run the model on upstream servers instead of in this process: its version
    directories need no ``model.onnx`` (docs/operations.md#remote-models)."""
    cuda: CudaConfig = Field(default_factory=CudaConfig)
    """CUDA and TensorRT provider settings (device, memory limit, arena, cuDNN search,
    I/O binding)."""
    intra_op_threads: Annotated[int, Field(ge=0)] = 0
    """Threads ONNX Runtime uses inside one operator; 0 lets it choose (one per core)."""
    inter_op_threads: Annotated[int, Field(ge=0)] = 0
    """Threads ONNX Runtime uses across operators; 0 lets it choose."""
    graph_optimization_level: Literal["disabled", "basic", "extended", "all"] = "all"
    """ONNX Runtime graph optimisations applied when the model loads."""
    allow_spinning: bool = False
    """Let ONNX Runtime's worker threads spin-wait for work between operators. Off by
    default: spinning threads take the cores the gateway's event loop needs (measured:
    +25% req/s for ``mlp`` with one worker, nearly 2x with two, docs/benchmarks.md)."""
    instances: Annotated[int, Field(ge=1, le=64)] = DEFAULT_INSTANCES
    """How many batches of this model may run at the same time (one ONNX Runtime call
    each). 1 measured fastest on 2 cores: the next batch fills while one runs. A remote
    model that does not set it runs two batches per upstream address at a time."""
    allow_non_finite: bool = False
    """Accept NaN and Infinity in input tensors (rejected with a 400 otherwise)."""
    version_policy: VersionPolicy = "all"
    """Which version directories to serve: ``all``, ``{latest: N}`` or ``{specific: [..]}``."""
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    """Dynamic batching, queue bound and default deadline of each version."""
    version_labels: dict[Label, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    """Names for versions, accepted wherever a version number is: with ``{stable: 1,
    canary: 2}``, ``/v2/models/m/versions/canary/infer`` runs version 2. A label is a
    lower-case letter, then up to 31 lower-case letters, digits, ``_`` or ``-``."""
    traffic: TrafficConfig | None = None
    """A weighted split of the unversioned routes between versions; none: the newest ready
    version takes every request."""
    warmup: WarmupConfig | None = None
    """Runs with generated or given inputs before a version takes traffic; none: no
    warm-up. A version whose warm-up fails never takes traffic."""
    labels: dict[str, Annotated[str, Field(min_length=1)]] = Field(default_factory=dict)
    """Class labels files by output name (``{probabilities: labels.txt}``), relative to
    the model directory: one label per line, line i naming class i. The classification
    extension adds them to the classes it returns. A name must stay inside the model
    directory: no absolute path, ``..`` or link out."""
    limits: list[LimitRule] = Field(default_factory=list)
    """Request-rate and concurrency limits for this model, checked before the server-wide
    ones (``limits.rules``); their buckets are this model's own (docs/limits.md)."""
    _class_labels: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _declaration: Declaration | None = PrivateAttr(default=None)

    @property
    def class_labels(self) -> dict[str, tuple[str, ...]]:
        """The labels read from the ``labels`` files, by output name."""
        return self._class_labels

    @property
    def declaration(self) -> Declaration | None:
        """The inputs and outputs a Triton configuration (``config.pbtxt``, or one sent
        with a load request) declares; each version is checked against it at load."""
        return self._declaration

    def declare(self, declaration: Declaration | None) -> None:
        """Record what a Triton configuration declares (``declaration``)."""
        self._declaration = declaration

    @model_validator(mode="after")
    def _split_targets_exist(self) -> ModelConfig:
        if self.traffic is not None:
            for target in self.traffic.split:
                if target not in self.version_labels and parse_version(target) is None:
                    defined = ", ".join(self.version_labels) or "none defined"
                    raise ValueError(
                        f"traffic.split: '{target}' is neither a version label ({defined}) "
                        "nor a version number"
                    )
        return self

    @field_validator("limits")
    @classmethod
    def _model_rules(cls, rules: list[LimitRule]) -> list[LimitRule]:
        for rule in rules:
            if rule.match.models:
                raise ValueError(
                    f"rule '{rule.name}': match.models is for server-wide rules (limits.rules); "
                    "a model's own rules apply to that model"
                )
        return unique_rule_names(rules)

    @field_validator("execution_providers")
    @classmethod
    def _expand_aliases(cls, providers: list[str]) -> list[str]:
        return [_PROVIDER_ALIASES.get(p.lower(), p) for p in providers]

    def runtime_options(self, model: str = "") -> RuntimeOptions:
        """The subset of the config a backend needs; ``model``: the model's name."""
        return RuntimeOptions(
            execution_providers=tuple(self.execution_providers),
            intra_op_threads=self.intra_op_threads,
            inter_op_threads=self.inter_op_threads,
            graph_optimization_level=self.graph_optimization_level,
            instances=self.instances,
            extra={"session.intra_op.allow_spinning": "1" if self.allow_spinning else "0"},
            provider_options=self.cuda.provider_options(),
            require_provider=self.when_provider_unavailable == "fail",
            io_binding=self.cuda.io_binding,
            remote=self.remote.options(model) if self.remote is not None else None,
            optional_inputs=tuple(
                t.name
                for t in (self._declaration.inputs if self._declaration else ())
                if t.optional
            ),
        )

    def batch_policy(self, *, stackable: bool) -> BatchPolicy:
        """The batcher policy this config asks for; ``stackable``: every input of the model
        has a dynamic batch axis, so requests can be concatenated."""
        section = self.batching
        return BatchPolicy(
            max_batch_size=section.max_batch_size,
            max_queue_delay_s=section.max_queue_delay_ms / 1000,
            max_queue_size=section.max_queue_size,
            preferred_batch_sizes=tuple(section.preferred_batch_sizes),
            instances=self.concurrent_batches(),
            batching=section.enabled and stackable,
            dispatch_ahead_s=section.dispatch_ahead_ms / 1000,
            inline_max_s=section.inline_max_ms / 1000,
        )

    def concurrent_batches(self) -> int:
        """``instances``; for a remote model that does not set it, two batches per upstream
        address, so that every replica has work while the next batch forms."""
        if self.remote is not None and "instances" not in self.model_fields_set:
            return 2 * len(self.remote.urls)
        return self.instances

    def select_versions(self, available: list[int]) -> list[int]:
        """The versions this policy serves out of ``available``, ascending."""
        ordered = sorted(available)
        policy = self.version_policy
        if isinstance(policy, LatestVersions):
            return ordered[-policy.latest :]
        if isinstance(policy, SpecificVersions):
            return [v for v in ordered if v in set(policy.specific)]
        return ordered


def parse_model_config(raw: Any, source: str) -> ModelConfig:
    """Validate an already-parsed YAML document; ``source`` names it in errors."""
    if raw is None:
        return ModelConfig()
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    try:
        return ModelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{source}: {describe_errors(exc.errors(), empty='(top level)')}"
        ) from exc


def load_model_config(model_dir: Path) -> ModelConfig:
    """Read ``<model_dir>/config.yaml`` or Triton's ``config.pbtxt`` (never both), then
    the files it names; defaults when there is neither."""
    path, pbtxt = model_dir / CONFIG_FILE, model_dir / PBTXT_FILE
    if path.exists() and pbtxt.exists():
        raise ConfigError(
            f"{model_dir}: has both {CONFIG_FILE} and {PBTXT_FILE}; keep the one to serve"
        )
    if pbtxt.exists():
        config = _read_pbtxt(pbtxt, model_dir.name)
        source = pbtxt
    elif path.exists():
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read YAML: {exc}") from exc
        config = parse_model_config(raw, str(path))
        source = path
    else:
        return ModelConfig()
    read_config_files(config, model_dir, str(source))
    return config


def _read_pbtxt(path: Path, model: str) -> ModelConfig:
    try:
        mapped = map_triton(
            read_pbtxt(path), ModelConfig().model_dump(), model=model, complete=True
        )
        config = ModelConfig.model_validate(mapped.fields)
    except (OSError, TritonConfigError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_errors(exc.errors())}") from None
    config.declare(mapped.declaration)
    return config


def read_config_files(config: ModelConfig, model_dir: Path, source: str) -> None:
    """Check that the files ``config`` names stay inside ``model_dir`` and read its class
    labels into it; ``ConfigError`` naming ``source`` and the field otherwise (blocking)."""
    try:
        if config.warmup is not None:
            for field, file in config.warmup.files().items():
                confined_path(model_dir, file, field)
        labels_paths = {
            output: confined_path(model_dir, name, f"labels.{output}")
            for output, name in config.labels.items()
        }
    except OutsideModelDirectory as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for output, labels_path in labels_paths.items():
        name = config.labels[output]
        try:
            text = labels_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{source}: labels of output '{output}': cannot read {name}: {exc}"
            ) from exc
        config.class_labels[output] = tuple(text.splitlines())


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``config.yaml``, as checked in under ``schemas/``."""
    schema = ModelConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tensorgate model config (models/<name>/config.yaml)"
    return schema
