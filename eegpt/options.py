"""Command-line options generated from configuration dataclasses (levanter/draccus style).

A config is the one source of its options' names, types, defaults and help: ``add_config`` adds
``--field-name`` for every field (help from the field's trailing comment or the class docstring),
``config_from`` builds the config back from the parsed options. Bad values are refused by the
config itself (``__post_init__``) before any work.
"""

from __future__ import annotations

import argparse
import types
from pathlib import Path

from eegpt.errors import EEGInputError, refuse_overwrite


_UnionType = types.UnionType


def _field_help(cls) -> dict[str, str]:
    """Each field's help: its trailing ``# comment`` in the class source (with the comment-only
    lines that continue it), else its entry in the docstring's attribute list (``name : text``)."""
    import inspect
    import re

    out: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if "__dataclass_fields__" in vars(k)]):  # a subclass wins
        last, column = None, -1
        for line in inspect.getsource(klass).splitlines():
            m = re.match(r"\s+(\w+): [^=#]+(?:= [^#]*)?#\s*(.+)$", line)
            more = re.match(r"\s+#\s*(.+)$", line)
            if m:
                last, column = m.group(1), line.index("#")
                out[last] = m.group(2).strip()
            elif more and last and line.index("#") == column:  # a continuation, under the comment it continues
                out[last] += " " + more.group(1).strip()
            else:
                last = None
    doc = inspect.getdoc(cls) or ""
    for m in re.finditer(r"^([\w, ]+) : (.+(?:\n {4}.+)*)", doc, re.M):
        for name in m.group(1).split(","):
            out.setdefault(name.strip(), " ".join(m.group(2).split()))
    return out


def _converter(tp, name: str):
    """argparse ``type`` for a field's annotation."""
    import ast
    import types
    import typing

    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:  # X | None: "none" -> None
        inner = _converter(next(a for a in args if a is not type(None)), name)
        return lambda v: None if v.lower() == "none" else inner(v)
    if typing.get_origin(tp) is tuple and args and args[-1] is not Ellipsis:  # (data, fsdp): "A,B"
        def pair(v):
            parts = v.split(",")
            if len(parts) != len(args):
                raise argparse.ArgumentTypeError(f"--{name.replace('_', '-')}: give {len(args)} comma-separated numbers")
            return tuple(a(x) for a, x in zip(args, parts))
        return pair
    if tp is tuple or typing.get_origin(tp) is tuple:  # ETE overrides: NAME=VALUE
        def override(v):
            key, _, value = v.partition("=")
            if not value:
                raise argparse.ArgumentTypeError(f"{v!r}: give NAME=VALUE")
            try:
                return key, ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return key, value
        return override
    return tp


def add_config(parser, cls, skip=()) -> None:
    """One option per field of the dataclass ``cls`` (``--field-name``), defaults and help from
    the class itself: the config is the one source of both.

    A field's type says how it is read: ``bool`` a switch (``--no-NAME`` when it defaults to true),
    ``bool | None`` both ``--NAME`` and ``--no-NAME``, ``Literal[...]`` a choice, ``list[T]`` one or
    more values, ``X | None`` also takes ``none``. A field without a default is required; one whose
    metadata says ``positional`` is an argument, not an option; metadata ``choices`` (a callable) gives
    choices known only at run time, ``metavar`` the name shown in help, ``flag`` the option's spelling
    where it differs from the field's name."""
    import argparse
    import dataclasses
    import typing

    hints, helps = typing.get_type_hints(cls), _field_help(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        tp, flag, text = hints[f.name], meta.get("flag", "--" + f.name.replace("_", "-")), helps.get(f.name, "")
        text = text.replace("%", "%%")  # argparse formats help with %: a comment's "10 %" is text
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default_factory() if f.default is dataclasses.MISSING else f.default
        extra = {"metavar": meta["metavar"]} if "metavar" in meta else {}
        if tp is bool:
            if default:
                parser.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false",
                                    help=f"turn off: {text}")
            else:
                parser.add_argument(flag, dest=f.name, action="store_true", help=text)
            continue
        if tp == (bool | None):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=text)
            continue
        options = [a for a in (tp, *typing.get_args(tp)) if typing.get_origin(a) is typing.Literal]
        if "choices" in meta or options:  # Literal[...] or Literal[...] | None: a choice (default as given)
            extra["choices"] = meta["choices"]() if "choices" in meta else typing.get_args(options[0])
            tp = str
        many = typing.get_origin(tp) is list or (typing.get_origin(tp) in (typing.Union, _UnionType)
                                                  and any(typing.get_origin(a) is list for a in typing.get_args(tp)))
        if many:
            item = typing.get_args(next(a for a in (tp, *typing.get_args(tp)) if typing.get_origin(a) is list))[0]
            extra.update(nargs="+", type=item)
        else:
            plural = (tp is tuple) or (typing.get_origin(tp) is tuple and typing.get_args(tp)[-1:] == (Ellipsis,))
            extra.update(type=_converter(tp, f.name), nargs="*" if plural else None)
        if meta.get("positional"):
            parser.add_argument(f.name, help=text, **extra)
            continue
        shown = "" if required or default is None else f" (default: {default})"
        parser.add_argument(flag, dest=f.name, default=default, required=required, help=f"{text}{shown}".strip(),
                            **extra)


def config_from(cls, args, **given):
    """The dataclass ``cls`` from parsed options (``given`` wins)."""
    import dataclasses

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in {**values, **given}.items()}
    return cls(**values)


def check_output(path, overwrite: bool, what: str = "") -> None:
    """Before any work: the folder exists and nothing is silently replaced."""
    if not path:
        return
    path = Path(path)
    if not path.parent.is_dir():
        raise EEGInputError(f"{path}: the folder {path.parent} does not exist; create it or choose another path")
    refuse_overwrite(path, overwrite, what)


CONFIGS = {"preprocess": "eegpt.preprocess:Preprocess", "pretrain": "eegpt.train:PretrainConfig",
           "tokenizer": "eegpt.neural_tokenizer:TokenizerTrainConfig",
           "finetune": "eegpt.finetune:FinetuneConfig", "copilot": "eegpt.copilot.decoder:CopilotTrainConfig",
           "instruct": "eegpt.copilot.instruct:InstructConfig"}


def config_class(name: str):
    """A command's config dataclass (imported when the parser is built)."""
    import importlib

    module, cls = CONFIGS[name].split(":")
    return getattr(importlib.import_module(module), cls)
