"""Write fidius plugins in Python.

A Python plugin is a class marked with :func:`plugin`, naming the Rust
interface (``#[plugin_interface]`` trait) it implements, with that trait's
version and hash (``cargo fidius inspect`` or the interface's WIT header
shows them). Its methods have the trait's names and take the same
arguments; values map as the fidius book's "Python plugins" page
describes (records are ``dict``\\ s, enums and variants are a case name or a
one-key ``dict``, ``Option`` is ``None`` or the value, byte buffers are
``bytes``).

The fidius runtime embeds this module and uses it when a host loads a
Python plugin; installing it (``pip install fidius-runtime/python``) is
for editors, type checkers and tests.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

__all__ = ["plugin", "PluginError", "Err", "HostError", "DeadlineExceeded", "PLUGIN_ATTRIBUTE"]

#: The attribute :func:`plugin` sets on a class.
PLUGIN_ATTRIBUTE = "__fidius_plugin__"

_T = TypeVar("_T", bound=type)


class PluginError(Exception):
    """fidius's ready-made error type (``fidius::PluginError`` in Rust).

    Raise it from a method whose Rust return type is
    ``Result<T, PluginError>``: the host gets ``Err(PluginError)`` with this
    code, message and details.
    """

    def __init__(self, code: str, message: str, details: dict[str, str] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = dict(details or {})


class Err(Exception):
    """Returns ``Err(value)`` from a method whose Rust return type is
    ``Result<T, E>``: ``raise fidius.Err(value)``, ``value`` shaped as
    ``E``."""

    def __init__(self, value: Any):
        super().__init__(value)
        self.value = value


def plugin(*, interface: str, version: int, hash: int, name: str | None = None) -> Callable[[_T], _T]:
    """Marks a class as a fidius plugin of ``interface``.

    ``name`` is the plugin's name hosts load it by (default: the class's
    name). The class is created once per plugin instance, with the
    instance's configuration as its one argument when the interface
    declares a configuration type (``config = T``).
    """

    def mark(cls: _T) -> _T:
        if not isinstance(cls, type):
            raise TypeError("@fidius.plugin goes on a class")
        setattr(
            cls,
            PLUGIN_ATTRIBUTE,
            {
                "interface": str(interface),
                "version": int(version),
                "hash": int(hash),
                "name": str(name or cls.__name__),
            },
        )
        return cls

    return mark


class HostError(Exception):
    """A call from the plugin to its host failed: the host's method
    panicked, or the arguments did not fit its types."""


class DeadlineExceeded(BaseException):
    """Raised asynchronously in a plugin's call that ran past the host's
    deadline. A ``BaseException``, so ``except Exception`` does not swallow
    it; the host gets ``CallError::Timeout``."""
