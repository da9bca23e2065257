"""Hardened XML parsing and the declarative XML <-> object mapping of every model class.

A model object (:class:`XmlNode`) is a thin typed view over one lxml element. Its fields are
descriptors (:func:`attr`, :func:`text`, :func:`child`, :func:`children`, ...) that read and
write the element tree directly, so XML that pyvirt does not understand stays in the tree and
round trips verbatim. Each descriptor also declares the element/attribute paths it understands;
:func:`unknown_paths` uses that registry to list what was kept without being understood.

This is the only module of :mod:`pyvirt.model` that imports lxml directly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from lxml import etree

from pyvirt.errors import InvalidConfigError, Problem

Element = etree._Element
T = TypeVar("T")
N = TypeVar("N", bound="XmlNode")

MAX_XML_BYTES = 4 * 1024 * 1024
_MIB = 1024 * 1024
_LINE_COL = re.compile(r",? line \d+, column \d+$")
_EXTERNAL_ID = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+\s+(SYSTEM|PUBLIC)\b", re.IGNORECASE)


def _refuse_doctype(what: str) -> InvalidConfigError:
    return InvalidConfigError(
        f"{what} with a DOCTYPE declaring entities or an external DTD is refused",
        hint="remove the <!DOCTYPE ...> declaration",
    )


def parse_xml(data: str | bytes, *, what: str = "XML", max_bytes: int = MAX_XML_BYTES) -> Element:
    """Parse untrusted XML safely and return its root element.

    Entities are never expanded or fetched, no network or DTD access happens, and any DOCTYPE
    that declares entities or names an external DTD is refused (billion laughs, XXE).

    :param data: the document, as text or bytes
    :param what: how to name the document in error messages
    :param max_bytes: size bound of the encoded document
    :raises InvalidConfigError: document too large, malformed or with a refused DOCTYPE
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if isinstance(data, str):
        # lxml refuses text carrying an encoding declaration; we re-encoded it as UTF-8
        raw = re.sub(rb"^(\s*<\?xml[^>]*?)\s+encoding=(['\"])[^'\"]*\2", rb"\1", raw)
    if len(raw) > max_bytes:
        size = f"{max_bytes // _MIB} MiB" if max_bytes % _MIB == 0 else f"{max_bytes} bytes"
        raise InvalidConfigError(f"{what} document larger than {size}")
    upper = raw.upper()
    if b"<!DOCTYPE" in upper and (b"<!ENTITY" in upper or _EXTERNAL_ID.search(raw)):
        raise _refuse_doctype(what)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=False,
        collect_ids=False,
    )
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as err:
        msg = _LINE_COL.sub("", str(err.msg or err)).replace("\n", " ").strip()
        line = err.lineno if err.lineno is not None else 1
        raise InvalidConfigError(f"malformed {what}: line {line}: {msg}") from None
    docinfo: Any = root.getroottree().docinfo
    dtd: Any = docinfo.internalDTD
    if docinfo.system_url or docinfo.public_id or (dtd is not None and list(dtd.iterentities())):
        raise _refuse_doctype(what)
    return root


# --- element tree helpers ---------------------------------------------------------------------


def _find(el: Element, path: str) -> Element | None:
    cur: Element | None = el
    for part in path.split("/") if path else ():
        assert cur is not None
        cur = cur.find(part)
        if cur is None:
            return None
    return cur


def _line_indent(el: Element) -> str | None:
    """The whitespace that starts ``el``'s line, or None when the document is not indented."""
    prev = el.getprevious()
    before = prev.tail if prev is not None else None
    if prev is None:
        parent = el.getparent()
        before = parent.text if parent is not None else "\n"
    if before is None or "\n" not in before or before.strip():
        return None
    return before.rsplit("\n", 1)[1]


def _reindent(el: Element, indent: str, step: str = "  ") -> None:
    if len(el) == 0 or (el.text is not None and el.text.strip()):
        return
    el.text = "\n" + indent + step
    for sub in el:
        sub.tail = "\n" + indent + step
        _reindent(sub, indent + step, step)
    el[-1].tail = "\n" + indent


def _tag(el: Element) -> str | None:
    return el.tag if isinstance(el.tag, str) else None


def insert_element(parent: Element, child: Element, order: Sequence[str] = ()) -> None:
    """Insert ``child`` into ``parent`` at its place in ``order``, keeping the indentation."""
    pos = len(parent)
    if child.tag in order:
        rank = order.index(str(child.tag))
        for i, sib in enumerate(parent):
            tag = _tag(sib)
            if tag in order and order.index(str(tag)) > rank:
                pos = i
                break
    if len(parent) == 0:
        own = _line_indent(parent)
        if own is not None and not (parent.text and parent.text.strip()):
            parent.text = "\n" + own + "  "
            child.tail = "\n" + own
        else:
            child.tail = None
        parent.append(child)
    elif pos >= len(parent):
        last = parent[-1]
        child.tail = last.tail
        last.tail = parent[-2].tail if len(parent) > 1 else parent.text
        parent.append(child)
    else:
        child.tail = parent[pos - 1].tail if pos > 0 else parent.text
        parent.insert(pos, child)
    indent = _line_indent(child)
    if indent is not None:
        _reindent(child, indent)


def remove_element(el: Element) -> None:
    """Detach ``el`` from its parent, keeping the surrounding indentation tidy."""
    parent = el.getparent()
    if parent is None:
        return
    if el.getnext() is None:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = el.tail
        elif parent.text is None or not parent.text.strip():
            parent.text = None
    parent.remove(el)


def _prune(el: Element, stop: Element) -> None:
    """Remove ``el`` and its ancestors below ``stop`` while they are left empty."""
    cur: Element | None = el
    while cur is not None and cur is not stop:
        if len(cur) or cur.attrib or (cur.text and cur.text.strip()):
            return
        parent = cur.getparent()
        remove_element(cur)
        cur = parent


def _ensure(node: XmlNode, path: str) -> Element:
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
        el = _find(node.element, self.path)
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
            el = _find(node.element, self.path)
            if el is None:
                return
            if self.attr_name:
                el.attrib.pop(self.attr_name, "")
                if self.path:
                    _prune(el, node.element)
            else:
                remove_element(el)
            return
        raw = self.fmt(value)
        if self.choices and raw not in self.choices:
            raise self._problem(node, raw, "is not one of " + ", ".join(self.choices))
        el = _ensure(node, self.path)
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
        return _find(node.element, self.path) is not None

    def write(self, node: XmlNode, value: bool) -> None:
        el = _find(node.element, self.path)
        if value and el is None:
            _ensure(node, self.path)
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
        parent = _find(node.element, parent_path)
        if parent is None:
            return []
        return [str(e.get(self.attr_name, "")) for e in parent.findall(tag)]

    def write(self, node: XmlNode, value: list[str]) -> None:
        parent_path, _, tag = self.path.rpartition("/")
        parent = _find(node.element, parent_path)
        for old in parent.findall(tag) if parent is not None else []:
            remove_element(old)
        for item in value:
            el = etree.Element(tag)
            el.set(self.attr_name, item)
            owner = _ensure(node, parent_path)
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
        el = _find(node.element, self.path)
        if el is not None:
            return self.cls(el)  # type: ignore[return-value]
        if not self.create:
            return None  # type: ignore[return-value]
        # a detached view: inserted into the tree on the first write, so reading stays pure
        view = self.cls(etree.Element(self.path.rpartition("/")[2]))
        view._pending = (node, self)
        return view  # type: ignore[return-value]

    def write(self, node: XmlNode, value: T) -> None:
        old = _find(node.element, self.path)
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
            indent = _line_indent(new)
            if indent is not None:
                _reindent(new, indent)
        else:
            insert_element(
                _ensure(node, parent_path), new, type(node).ORDER if not parent_path else ()
            )

    def known(self) -> set[str]:
        return super().known() | {join_path(self.path, p) for p in self.cls.known_paths()}

    def sub_nodes(self, node: XmlNode) -> list[XmlNode]:
        if _find(node.element, self.path) is None:
            return []
        return [self.cls(_find(node.element, self.path))]


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
        parent = _find(node.element, parent_path)
        if parent is None:
            return []
        return [self.cls(e) for e in parent.findall(tag)]  # type: ignore[misc]

    def write(self, node: XmlNode, value: list[T]) -> None:
        parent_path, _, tag = self.path.rpartition("/")
        parent = _find(node.element, parent_path)
        for old in parent.findall(tag) if parent is not None else []:
            remove_element(old)
        for item in value:
            assert isinstance(item, XmlNode)
            item.element.tag = tag
            insert_element(
                _ensure(node, parent_path),
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
        if _find(parent.element, field.path) is None:
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
            tag = _tag(sub)
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


def to_string(el: Element) -> str:
    """Serialize an element as text, without an XML declaration.

    A document root is serialized with its surrounding comments and processing instructions.
    """
    if el.getparent() is None:
        return etree.tostring(el.getroottree(), encoding="unicode")
    return etree.tostring(el, encoding="unicode", with_tail=False)


def copy_element(el: Element) -> Element:
    """A deep copy of ``el``; a document root is copied with its whole document."""
    if el.getparent() is None:
        return copy.deepcopy(el.getroottree()).getroot()
    new = copy.deepcopy(el)
    new.tail = None
    return new
