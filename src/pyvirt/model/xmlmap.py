"""The declarative XML <-> object mapping of every model class.

A model object (:class:`XmlNode`) is a thin typed view over one lxml element. Its fields are
descriptors (:func:`attr`, :func:`text`, :func:`child`, :func:`children`, ...) that read and
write the element tree directly, so XML that pyvirt does not understand stays in the tree and
round trips verbatim. Each descriptor also declares the element/attribute paths it understands;
:func:`unknown_paths` uses that registry to list what was kept without being understood.

Parsing lives in :mod:`pyvirt.model.xmltree` and is re-exported here as :func:`parse_xml`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from lxml import etree

from pyvirt.errors import InvalidConfigError, Problem
from pyvirt.model.xmltree import (
    MAX_XML_BYTES,
    Element,
    copy_element,
    find_path,
    insert_element,
    line_indent,
    parse_xml,
    prune,
    reindent,
    remove_element,
    tag_of,
    to_string,
)

__all__ = [
    "MAX_XML_BYTES",
    "Element",
    "XmlNode",
    "attr",
    "attr_list",
    "bool_attr",
    "child",
    "children",
    "copy_element",
    "flag",
    "insert_element",
    "int_attr",
    "int_text",
    "parse_xml",
    "remove_element",
    "required_child",
    "text",
    "to_string",
    "unknown_paths",
]

T = TypeVar("T")
N = TypeVar("N", bound="XmlNode")


def ensure_path(node: XmlNode, path: str) -> Element:
    node.attach()
    cur = node.element
    for i, part in enumerate(path.split("/") if path else ()):
        nxt = cur.find(part)
        if nxt is None:
            nxt = etree.Element(part)
            insert_element(cur, nxt, type(node).ORDER if i == 0 else ())
        cur = nxt
    return cur


def join_path(base: str, sub: str) -> str:
    """Join two relative paths; ``sub`` may be an attribute (``@name``)."""
    if not base:
        return sub
    if not sub:
        return base
    return base + sub if sub.startswith("@") else f"{base}/{sub}"


def _prefixes(path: str) -> set[str]:
    parts = path.split("/") if path else []
    return {"/".join(parts[: i + 1]) for i in range(len(parts))}


# --- value conversions ------------------------------------------------------------------------


def parse_int(raw: str) -> int:
    """Parse a decimal or ``0x`` hexadecimal integer."""
    s = raw.strip()
    try:
        return int(s, 16) if s.lower().startswith("0x") else int(s, 10)
    except ValueError:
        raise ValueError("is not an integer") from None


def parse_uint(raw: str) -> int:
    """Parse a non-negative integer."""
    value = parse_int(raw)
    if value < 0:
        raise ValueError("is negative")
    return value


def _hex_fmt(width: int) -> Callable[[int], str]:
    return lambda v: f"0x{v:0{width}x}"


def _yesno(true: str, false: str) -> tuple[Callable[[str], bool], Callable[[bool], str]]:
    def parse(raw: str) -> bool:
        if raw == true:
            return True
        if raw == false:
            return False
        raise ValueError(f"is not '{true}' or '{false}'")

    return parse, (lambda v: true if v else false)


# --- descriptors ------------------------------------------------------------------------------


class Field(Generic[T]):
    """A typed view of one piece of XML; the base of every descriptor."""

    def __init__(self, path: str = "") -> None:
        self.path = path
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, obj: XmlNode, owner: type | None = None) -> T: ...
    def __get__(self, obj: XmlNode | None, owner: type | None = None) -> T | Self:
        if obj is None:
            return self
        return self.read(obj)

    def __set__(self, obj: XmlNode, value: T) -> None:
        self.write(obj, value)

    def read(self, node: XmlNode) -> T:
        """Read the value from ``node``'s element."""
        raise NotImplementedError

    def write(self, node: XmlNode, value: T) -> None:
        """Write the value into ``node``'s element."""
        raise AttributeError(f"{self.name} is read-only")

    def known(self) -> set[str]:
        """Relative element/attribute paths this field understands."""
        return _prefixes(self.path)

    def sub_nodes(self, node: XmlNode) -> list[XmlNode]:
        """Nested model objects (for recursive validation)."""
        return []


class Value(Field[T]):
    """A scalar stored in an attribute (``attr_name`` set) or in an element's text."""

    def __init__(
        self,
        path: str,
        attr_name: str | None,
        parse: Callable[[str], Any],
        fmt: Callable[[Any], str],
        default: T,
        choices: Sequence[str] = (),
        init_text: str = "",
    ) -> None:
        super().__init__(path)
        self.init_text = init_text
        self.attr_name = attr_name
        self.parse = parse
        self.fmt = fmt
        self.default = default
        self.choices = tuple(choices)

    def _problem(self, node: XmlNode, raw: str, why: str) -> InvalidConfigError:
        what = f"{self.attr_name} '{raw}'" if self.attr_name else f"'{raw}'"
        return InvalidConfigError(problems=[Problem(node.xpath(self.path), f"{what} {why}")])

    def read(self, node: XmlNode) -> T:
        el = find_path(node.element, self.path)
        if el is None:
            return self.default
        raw = el.get(self.attr_name) if self.attr_name else (el.text or "")
        if raw is None:
            return self.default
        if self.choices and raw not in self.choices:
            raise self._problem(node, raw, "is not one of " + ", ".join(self.choices))
        try:
            return self.parse(raw)  # type: ignore[no-any-return]
        except ValueError as err:
            raise self._problem(node, raw, str(err)) from None

    def write(self, node: XmlNode, value: T) -> None:
        if value is None:
            el = find_path(node.element, self.path)
            if el is None:
                return
            if self.attr_name:
                el.attrib.pop(self.attr_name, "")
                if self.path:
                    prune(el, node.element)
            else:
                remove_element(el)
            return
        raw = self.fmt(value)
        if self.choices and raw not in self.choices:
            raise self._problem(node, raw, "is not one of " + ", ".join(self.choices))
        el = ensure_path(node, self.path)
        if self.attr_name:
            el.set(self.attr_name, raw)
            if self.init_text and not (el.text or "").strip():
                el.text = self.init_text
        else:
            el.text = raw

    def known(self) -> set[str]:
        extra = {join_path(self.path, "@" + self.attr_name)} if self.attr_name else set()
        return super().known() | extra


@overload
def attr(
    name: str,
    path: str = "",
    *,
    default: None = None,
    choices: Sequence[str] = (),
    init_text: str = "",
) -> Value[str | None]: ...
@overload
def attr(
    name: str, path: str = "", *, default: str, choices: Sequence[str] = (), init_text: str = ""
) -> Value[str]: ...
def attr(
    name: str,
    path: str = "",
    *,
    default: str | None = None,
    choices: Sequence[str] = (),
    init_text: str = "",
) -> Value[str | None] | Value[str]:
    """A string attribute ``name`` of the element at ``path`` (``""``: the node itself).

    ``init_text`` is written as the element's text when setting the attribute finds it empty
    (``<type machine=...>hvm</type>``).
    """
    return Value(path, name, str, str, default, choices, init_text)


@overload
def int_attr(
    name: str, path: str = "", *, default: None = None, hex_width: int = 0
) -> Value[int | None]: ...
@overload
def int_attr(name: str, path: str = "", *, default: int, hex_width: int = 0) -> Value[int]: ...
def int_attr(
    name: str, path: str = "", *, default: int | None = None, hex_width: int = 0
) -> Value[int | None] | Value[int]:
    """A non-negative integer attribute; written as ``0x..`` hex when ``hex_width`` is set."""
    return Value(path, name, parse_uint, _hex_fmt(hex_width) if hex_width else str, default)


def bool_attr(
    name: str, path: str = "", *, true: str = "yes", false: str = "no"
) -> Value[bool | None]:
    """A ``yes``/``no`` (or ``on``/``off``) attribute as ``bool | None``."""
    parse, fmt = _yesno(true, false)
    return Value(path, name, parse, fmt, None)


@overload
def text(path: str, *, default: None = None, choices: Sequence[str] = ()) -> Value[str | None]: ...
@overload
def text(path: str, *, default: str, choices: Sequence[str] = ()) -> Value[str]: ...
def text(
    path: str, *, default: str | None = None, choices: Sequence[str] = ()
) -> Value[str | None] | Value[str]:
    """The text of the element at ``path``; setting None removes the element."""
    return Value(path, None, str, str, default, choices)


def int_text(path: str) -> Value[int | None]:
    """The text of the element at ``path`` as a non-negative integer."""
    return Value(path, None, parse_uint, str, None)


class Flag(Field[bool]):
    """True when the (empty) element at ``path`` is present, like ``<readonly/>``."""

    def read(self, node: XmlNode) -> bool:
        return find_path(node.element, self.path) is not None

    def write(self, node: XmlNode, value: bool) -> None:
        el = find_path(node.element, self.path)
        if value and el is None:
            ensure_path(node, self.path)
        elif not value and el is not None:
            remove_element(el)


def flag(path: str) -> Flag:
    """See :class:`Flag`."""
    return Flag(path)


class AttrList(Field[list[str]]):
    """The ``name`` attribute of every element at ``path``, like ``<boot dev=.../>``."""

    def __init__(self, path: str, attr_name: str) -> None:
        super().__init__(path)
        self.attr_name = attr_name

    def read(self, node: XmlNode) -> list[str]:
        parent_path, _, tag = self.path.rpartition("/")
        parent = find_path(node.element, parent_path)
        if parent is None:
            return []
        return [str(e.get(self.attr_name, "")) for e in parent.findall(tag)]

    def write(self, node: XmlNode, value: list[str]) -> None:
        parent_path, _, tag = self.path.rpartition("/")
        parent = find_path(node.element, parent_path)
        for old in parent.findall(tag) if parent is not None else []:
            remove_element(old)
        for item in value:
            el = etree.Element(tag)
            el.set(self.attr_name, item)
            owner = ensure_path(node, parent_path)
            insert_element(owner, el, type(node).ORDER if not parent_path else ())

    def known(self) -> set[str]:
        return super().known() | {join_path(self.path, "@" + self.attr_name)}


def attr_list(path: str, name: str) -> AttrList:
    """See :class:`AttrList`."""
    return AttrList(path, name)


class Child(Field[T]):
    """The nested model object at ``path``, or None (or created on demand when ``create``)."""

    def __init__(self, path: str, cls: type[XmlNode], create: bool) -> None:
        super().__init__(path)
        self.cls = cls
        self.create = create

    def read(self, node: XmlNode) -> T:
        el = find_path(node.element, self.path)
        if el is not None:
            return self.cls(el)  # type: ignore[return-value]
        if not self.create:
            return None  # type: ignore[return-value]
        # a detached view: inserted into the tree on the first write, so reading stays pure
        view = self.cls(etree.Element(self.path.rpartition("/")[2]))
        view._pending = (node, self)
        return view  # type: ignore[return-value]

    def write(self, node: XmlNode, value: T) -> None:
        old = find_path(node.element, self.path)
        if value is None:
            if old is not None:
                remove_element(old)
            return
        assert isinstance(value, XmlNode)
        new = value.element
        if old is new:
            return
        parent_path, _, tag = self.path.rpartition("/")
        new.tag = tag
        if old is not None:
            new.tail = old.tail
            old_parent = old.getparent()
            assert old_parent is not None
            old_parent.replace(old, new)
            indent = line_indent(new)
            if indent is not None:
                reindent(new, indent)
        else:
            insert_element(
                ensure_path(node, parent_path), new, type(node).ORDER if not parent_path else ()
            )

    def known(self) -> set[str]:
        return super().known() | {join_path(self.path, p) for p in self.cls.known_paths()}

    def sub_nodes(self, node: XmlNode) -> list[XmlNode]:
        if find_path(node.element, self.path) is None:
            return []
        return [self.cls(find_path(node.element, self.path))]


def child(path: str, cls: type[N]) -> Child[N | None]:
    """An optional nested object; assign None to remove it."""
    return Child(path, cls, create=False)


def required_child(path: str, cls: type[N]) -> Child[N]:
    """A nested object whose element is created (empty) when first read."""
    return Child(path, cls, create=True)


class Children(Field[list[T]]):
    """Every nested object at ``path`` (the last component is the repeated tag)."""

    def __init__(self, path: str, cls: type[XmlNode]) -> None:
        super().__init__(path)
        self.cls = cls

    def read(self, node: XmlNode) -> list[T]:
        parent_path, _, tag = self.path.rpartition("/")
        parent = find_path(node.element, parent_path)
        if parent is None:
            return []
        return [self.cls(e) for e in parent.findall(tag)]  # type: ignore[misc]

    def write(self, node: XmlNode, value: list[T]) -> None:
        parent_path, _, tag = self.path.rpartition("/")
        parent = find_path(node.element, parent_path)
        for old in parent.findall(tag) if parent is not None else []:
            remove_element(old)
        for item in value:
            assert isinstance(item, XmlNode)
            item.element.tag = tag
            insert_element(
                ensure_path(node, parent_path),
                item.element,
                type(node).ORDER if not parent_path else (),
            )

    def known(self) -> set[str]:
        return super().known() | {join_path(self.path, p) for p in self.cls.known_paths()}

    def sub_nodes(self, node: XmlNode) -> list[XmlNode]:
        return list(self.read(node))  # type: ignore[arg-type]


def children(path: str, cls: type[N]) -> Children[N]:
    """See :class:`Children`."""
    return Children(path, cls)


# --- the node base class ----------------------------------------------------------------------


class XmlNode:
    """A typed view over one XML element; fields are the descriptors declared on the class.

    ``XmlNode()`` creates a fresh element named :attr:`TAG`; ``XmlNode(element)`` wraps an
    existing one; keyword arguments set fields. Two views are equal when they wrap the same
    element.
    """

    TAG: ClassVar[str] = ""
    #: canonical order of child elements, used to place newly created ones
    ORDER: ClassVar[tuple[str, ...]] = ()
    #: relative paths understood by hand-written properties (not descriptors)
    EXTRA_KNOWN: ClassVar[tuple[str, ...]] = ()
    _fields: ClassVar[dict[str, Field[Any]]] = {}
    _known: ClassVar[frozenset[str] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, Field[Any]] = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, Field):
                    fields[key] = value
        cls._fields = fields
        cls._known = None

    def __init__(self, element: Element | None = None, /, **values: object) -> None:
        self.element: Element = element if element is not None else etree.Element(self.TAG)
        self._pending: tuple[XmlNode, Child[Any]] | None = None
        for key, value in values.items():
            if not hasattr(type(self), key):
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
            setattr(self, key, value)

    def attach(self) -> None:
        """Insert a detached view (of an absent required child) into its parent's tree."""
        pending, self._pending = self._pending, None
        if pending is None or self.element.getparent() is not None:
            return
        parent, field = pending
        if find_path(parent.element, field.path) is None:
            field.write(parent, self)

    @classmethod
    def known_paths(cls) -> frozenset[str]:
        """Every relative element path and ``path@attr`` this class understands."""
        if cls._known is None:
            known: set[str] = set(cls.EXTRA_KNOWN)
            for field in cls._fields.values():
                known |= field.known()
            cls._known = frozenset(known)
        return cls._known

    def xpath(self, sub: str = "") -> str:
        """This element's path for messages, like ``<devices>/<disk>[2]/<target>``."""
        parts: list[str] = []
        el: Element | None = self.element
        while el is not None and el.getparent() is not None:
            parent = el.getparent()
            assert parent is not None
            same = parent.findall(str(el.tag)) if isinstance(el.tag, str) else [el]
            idx = f"[{same.index(el) + 1}]" if len(same) > 1 else ""
            parts.append(f"<{_display(el)}>{idx}")
            el = parent
        parts.reverse()
        parts += [f"<{p}>" for p in sub.split("/") if p]
        if not parts:
            return f"<{_display(self.element)}>"
        return "/".join(parts)

    def field_problems(self) -> list[Problem]:
        """Problems found reading every field (bad numbers, values outside their choices)."""
        problems: list[Problem] = []
        for field in self._fields.values():
            try:
                field.read(self)
            except InvalidConfigError as err:
                problems += err.problems
                continue
            for sub in field.sub_nodes(self):
                problems += sub.field_problems()
        return problems

    def __eq__(self, other: object) -> bool:
        return isinstance(other, XmlNode) and other.element is self.element

    def __hash__(self) -> int:
        return id(self.element)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {etree.tostring(self.element, encoding='unicode')[:80]!r}>"


def _display(el: Element) -> str:
    if not isinstance(el.tag, str):
        return "#comment"
    qname = etree.QName(el)
    if qname.namespace and el.prefix:
        return f"{el.prefix}:{qname.localname}"
    return qname.localname


def unknown_paths(node: XmlNode) -> list[str]:
    """Warnings for every element/attribute below ``node`` that its class does not understand.

    Each warning reads ``"<devices>/<foo>: not understood by pyvirt; kept as is"``; an element
    path is reported once however often it occurs.
    """
    known = type(node).known_paths()
    out: dict[str, None] = {}
    suffix = ": not understood by pyvirt; kept as is"

    def is_known(rel: str) -> bool:
        parent, _, _ = rel.rpartition("/")
        return rel in known or join_path(parent, "*") in known

    def walk(el: Element, rel: str, display: str) -> None:
        for name in el.attrib:
            key = join_path(rel, "@" + str(name))
            wild = join_path(join_path(rel.rpartition("/")[0], "*"), "@" + str(name))
            if key not in known and wild not in known:
                out[
                    f"{display or '<' + _display(el) + '>'}@{etree.QName(name).localname}{suffix}"
                ] = None
        for sub in el:
            tag = tag_of(sub)
            if tag is None:
                continue
            sub_rel = join_path(rel, tag)
            sub_display = f"{display}/<{_display(sub)}>" if display else f"<{_display(sub)}>"
            if is_known(sub_rel):
                walk(sub, sub_rel, sub_display)
            else:
                out[sub_display + suffix] = None

    walk(node.element, "", "")
    return list(out)


class XmlDocument(XmlNode):
    """The root of a whole definition (domain, network, pool, volume): parse, check, serialize.

    Subclasses set :attr:`TAG`, :attr:`WHAT` (how parse errors name the document) and
    :attr:`GENERATE_UUID`, and override :meth:`validate`.
    """

    WHAT: ClassVar[str] = "XML"
    #: write a random ``<uuid>`` into new or parsed documents that lack one
    GENERATE_UUID: ClassVar[bool] = False

    def __init__(self, element: Element | None = None, /, **values: object) -> None:
        super().__init__(element, **values)
        if self.GENERATE_UUID and self.element.find("uuid") is None:
            import uuid as uuidlib

            self.uuid = str(uuidlib.uuid4())

    @classmethod
    def from_xml(cls, data: str | bytes, *, validate: bool = True) -> Self:
        """Parse and validate a document.

        :param validate: False for a document pyvirt wrote itself after validating it (a
            running domain's live XML): parsing is then all it needs
        :raises InvalidConfigError: malformed or refused XML, a wrong root element, or the
            ``.problems`` found by :meth:`validate`
        """
        root = parse_xml(data, what=cls.WHAT)
        if root.tag != cls.TAG:
            where = f"<{root.tag}>" if isinstance(root.tag, str) else "<?>"
            raise InvalidConfigError(problems=[Problem(where, f"root element must be <{cls.TAG}>")])
        doc = cls(root)
        problems = doc.validate() if validate else []
        if problems:
            raise InvalidConfigError(problems=problems)
        return doc

    def validate(self) -> list[Problem]:
        """Every problem found in this definition (empty when valid)."""
        return []

    def to_xml(self) -> str:
        """The XML text, ending with a newline."""
        return to_string(self.element) + "\n"

    def copy(self) -> Self:
        """An independent deep copy."""
        return type(self)(copy_element(self.element))

    @property
    def warnings(self) -> list[str]:
        """Elements/attributes kept without being understood, one entry per path."""
        return unknown_paths(self)
