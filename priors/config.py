"""Models that remember how they were built, so checkpoints can rebuild them."""
from __future__ import annotations

import functools
import inspect


class RecordsInitArgs:
    """Mixin: after ``__init__`` the instance holds ``init_args`` (the constructor's keyword
    arguments, defaults filled in) and ``class_path`` (``module.ClassName``)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        original = cls.__init__
        signature = inspect.signature(original)

        @functools.wraps(original)
        def __init__(self, *args, **kw):
            original(self, *args, **kw)
            if type(self) is cls:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self.init_args = {k: v for k, v in bound.arguments.items() if k != "self"}
                self.class_path = f"{cls.__module__}.{cls.__qualname__}"

        cls.__init__ = __init__
