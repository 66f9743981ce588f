"""Safe YAML with the traps closed, for every file mnist-lab reads from a user: duplicate keys,
alias bombs, recursive aliases and deep nesting refused with the line they are on."""

from __future__ import annotations

import typing

import yaml

from mnist_lab.core.errors import described


MAX_YAML_NODES = 100_000


MAX_YAML_DEPTH = 32


def parse_yaml(text: str):
    """Safe YAML with the traps closed: duplicate keys, alias bombs, recursive aliases
    and deep nesting are refused (ValueError) instead of being taken silently or
    exhausting memory."""
    loader = None
    try:
        loader = _StrictLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as error:  # a binary file: name the byte, quote nothing
        code = error.character if isinstance(error.character, int) else ord(error.character)
        raise ValueError(f"not a text file (character #x{code:04x} at position {error.position})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ValueError(f"{where}invalid YAML: {problem}") from None
    except RecursionError:
        raise ValueError("invalid YAML: nested deeper than a config can be") from None
    finally:
        if loader is not None:
            loader.dispose()


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML says keys are unique;
    PyYAML would keep the last value without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {described(key)} (first at line {seen[key] + 1})",
                    key_node.start_mark)
            if isinstance(key, typing.Hashable):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _where(node) -> str:
    return f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}: "


def _check_size(root):
    """Refuse documents whose aliases expand beyond MAX_YAML_NODES or nest beyond
    MAX_YAML_DEPTH: a few hundred bytes of nested aliases can stand for billions of values."""
    expanded = {}  # id(node) -> expanded size, each shared node counted once

    def size(node, depth):
        if depth > MAX_YAML_DEPTH:
            raise ValueError(f"{_where(node)}invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels")
        if id(node) in expanded:
            if expanded[id(node)] is None:
                raise ValueError(f"{_where(node)}invalid YAML: an alias refers to itself")
            return expanded[id(node)]
        expanded[id(node)] = None
        children = ([child for pair in node.value for child in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        total = 1 + sum(size(child, depth + 1) for child in children)
        if total > MAX_YAML_NODES:
            raise ValueError(f"invalid YAML: its aliases expand to more than {MAX_YAML_NODES:,} values")
        expanded[id(node)] = total
        return total

    size(root, 0)
