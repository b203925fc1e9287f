"""Loads one Python plugin in isolation (embedded in fidius-runtime).

Each plugin's modules live under a package of their own
(``__fidius_plugin_<n>``), found by a meta-path finder that answers only for
that package, so two plugins that both have a module named ``util`` do not
collide and nothing is added to ``sys.path``. The plugin's modules get an
``__import__`` that resolves top-level names of modules in the plugin's
directory to that package first (``import util`` works as written). Source
is compiled directly: no ``__pycache__`` is read from or written into the
plugin's directory, which may be a verified package.
"""

import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import os
import sys

_counter = itertools.count()


class _Loader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname, path, builtins_dict):
        super().__init__(fullname, path)
        self._builtins = builtins_dict

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        with open(path, "rb") as f:
            source = f.read()
        return compile(source, path, "exec", dont_inherit=True)

    def set_data(self, path, data, *, _mode=0o666):
        # Never write bytecode next to the plugin's sources.
        pass

    def exec_module(self, module):
        module.__builtins__ = self._builtins
        super().exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, prefix, directory, builtins_dict):
        self.prefix = prefix
        self.directory = directory
        self.builtins = builtins_dict

    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith(self.prefix + "."):
            return None
        base = os.path.join(self.directory, *fullname[len(self.prefix) + 1 :].split("."))
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return importlib.util.spec_from_file_location(
                fullname,
                init,
                loader=_Loader(fullname, init, self.builtins),
                submodule_search_locations=[base],
            )
        if os.path.isfile(base + ".py"):
            return importlib.util.spec_from_file_location(
                fullname, base + ".py", loader=_Loader(fullname, base + ".py", self.builtins)
            )
        return None


def load(path):
    """Imports the plugin module at ``path``; returns the module, its
    package name and the classes marked with ``@fidius.plugin``, as
    ``(class, declaration)`` pairs in definition order."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    entry = os.path.splitext(os.path.basename(path))[0]
    prefix = f"__fidius_plugin_{next(_counter)}"
    real_import = builtins.__import__
    local = {}

    def is_local(top):
        if top not in local:
            local[top] = os.path.isfile(os.path.join(directory, top + ".py")) or os.path.isfile(
                os.path.join(directory, top, "__init__.py")
            )
        return local[top]

    def plugin_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and is_local(name.partition(".")[0]):
            full = f"{prefix}.{name}"
            real_import(full, globals, locals, fromlist, 0)
            if fromlist:
                return sys.modules[full]
            return sys.modules[f"{prefix}.{name.partition('.')[0]}"]
        return real_import(name, globals, locals, fromlist, level)

    plugin_builtins = dict(builtins.__dict__)
    plugin_builtins["__import__"] = plugin_import
    package = importlib.util.module_from_spec(
        importlib.machinery.ModuleSpec(prefix, None, is_package=True)
    )
    package.__path__ = []
    sys.modules[prefix] = package
    sys.meta_path.append(_Finder(prefix, directory, plugin_builtins))
    module = importlib.import_module(f"{prefix}.{entry}")
    fidius = sys.modules["fidius"]
    marked = []
    for value in vars(module).values():
        declaration = getattr(value, fidius.PLUGIN_ATTRIBUTE, None)
        if isinstance(value, type) and isinstance(declaration, dict):
            if value.__module__ == module.__name__:
                marked.append((value, declaration))
    return module, prefix, marked


def arity(function):
    """How many positional arguments a method takes besides ``self``, or
    ``None`` when it takes any number."""
    import inspect

    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind == parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count
