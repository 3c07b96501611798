"""The one registry dialect: a name -> implementation mapping with one error type.

Every extension point of the package (pretraining objectives, model heads, augmentations,
task types, export formats, generator processes) is a :class:`Registry`: read it as a
mapping (``OBJECTIVES["masked"]``, ``"vicreg" in ...``, ``list(...)`` in registration
order), extend it with :meth:`Registry.register` (directly or as a decorator, usually
through the extension point's own ``register_*`` that checks what it needs first). An
unknown name is a :class:`~jetfm_coffea.errors.UnknownNameError` (a
:class:`~jetfm_coffea.errors.ConfigError`, and a :class:`KeyError` for code that treats
the registry as the mapping it is) naming the kind, the name and the registered ones;
registering a taken name again is a :class:`~jetfm_coffea.errors.ConfigError` unless it
is the same implementation (a module imported twice).

>>> shapes = Registry("shape", hint="register_shape")
>>> _ = shapes.register("square", 4)
>>> shapes["square"], list(shapes)
(4, ['square'])
>>> shapes["circle"]
Traceback (most recent call last):
...
jetfm_coffea.errors.UnknownNameError: unknown shape 'circle'; registered: square (register_shape)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from jetfm_coffea.errors import ConfigError, UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


def _same(old: Any, new: Any) -> bool:
    """The same implementation registered again (the same object, or the same class or
    function re-created by a second import of its module)."""
    if old is new:
        return True
    name = getattr(new, "__qualname__", None)
    return name is not None and (
        getattr(old, "__module__", None),
        getattr(old, "__qualname__", None),
    ) == (
        getattr(new, "__module__", None),
        name,
    )


class Registry(Mapping[str, T], Generic[T]):
    """Name -> implementation, in registration order; see the module docstring."""

    def __init__(self, kind: str, *, hint: str = "", same: Callable[[T, T], bool] = _same):
        self.kind, self.hint, self._same = kind, hint, same
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, impl: T) -> T: ...

    def register(self, name: str, impl: Any = ...) -> Any:
        """Register ``impl`` as ``name`` (returns it); without ``impl``, a decorator."""
        if impl is ...:
            return lambda obj: self.register(name, obj)
        old = self._items.get(name)
        if old is not None and not self._same(old, impl):
            raise ConfigError(f"a {self.kind} named {name!r} is already registered ({old!r})")
        self._items[name] = impl
        return impl

    def unregister(self, name: str) -> T | None:
        """Remove ``name`` (a test's or a reloaded plugin's clean-up); its implementation,
        or None if it was not registered."""
        return self._items.pop(name, None)

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            hint = f" ({self.hint})" if self.hint else ""
            raise UnknownNameError(name, self._items, self.kind, hint) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
