"""The daemon's configuration: one frozen, typed model, read from YAML and validated once at start.

``load_config`` is the whole path: ``yaml_file`` reads the file strictly, ``checks`` checks every
key (each value with a rule of ``value_checks``) and builds the ``sections`` dataclasses, and
``kafka_options`` holds the rules for the
``kafka.common``, ``kafka.consumer`` and ``kafka.producer`` sections, passed verbatim to
kafka-python except for the options the daemon sets itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from logwarden.daemon.config.checks import parse_config
from logwarden.daemon.config.sections import (
    INPUT_FORMATS,
    LOG_LEVELS,
    DaemonConfig,
    EntityConfig,
    EntitySource,
    InputConfig,
    InputFormat,
    JsonInputConfig,
    KafkaConfig,
    LoggingConfig,
    LogLevel,
    ModelConfig,
    ProcessingConfig,
    ShutdownConfig,
    StateConfig,
)
from logwarden.daemon.config.yaml_file import read_config_file

__all__ = [
    "INPUT_FORMATS",
    "LOG_LEVELS",
    "DaemonConfig",
    "EntityConfig",
    "EntitySource",
    "InputConfig",
    "InputFormat",
    "JsonInputConfig",
    "KafkaConfig",
    "LogLevel",
    "LoggingConfig",
    "ModelConfig",
    "ProcessingConfig",
    "ShutdownConfig",
    "StateConfig",
    "load_config",
    "parse_config",
]


def load_config(path: str | Path) -> DaemonConfig:
    """Read, parse and validate a YAML config file; ConfigError on any problem.

    A relative ``model.path`` or ``state.dir`` is taken relative to the config file's directory,
    never to the working directory: systemd starts the daemon in ``/``, so a ``run --check`` from
    the state directory would otherwise pass with paths the service then cannot find.
    """
    path = Path(path)
    return with_paths_from(parse_config(read_config_file(path), source=str(path)), path.absolute().parent)


def with_paths_from(config: DaemonConfig, directory: Path) -> DaemonConfig:
    """``config`` with its relative file system paths joined to ``directory``."""
    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, path=directory / config.model.path),
        state=dataclasses.replace(config.state, dir=directory / config.state.dir),
    )
