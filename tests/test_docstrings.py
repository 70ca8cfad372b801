"""Every public function and class of the package says what it does."""

import importlib
import inspect
import pkgutil

import eegpt
import ete
import teg


def _modules():
    for pkg in (eegpt, ete, teg):
        yield pkg.__name__
        for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            yield m.name


def test_every_public_function_and_class_has_a_docstring():
    missing = []
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ImportError as err:  # an optional extra (gradio, pylsl, torch) not installed here
            if err.name not in ("gradio", "pylsl", "torch", "braindecode"):
                raise
            continue
        public = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for attr in public:
            obj = getattr(module, attr, None)
            defined_here = getattr(obj, "__module__", None) == name
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and defined_here and not (obj.__doc__ or "").strip():
                missing.append(f"{name}.{attr}")
    assert not missing, f"{len(missing)} without a docstring: {', '.join(missing)}"
