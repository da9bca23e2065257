"""Hardened XML parsing and the element-tree helpers under :mod:`pyvirt.model.xmlmap`.

Parsing never expands or fetches entities, touches the network or loads a DTD; inserting and
removing elements keeps the document's indentation so edited XML stays readable.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from lxml import etree

from pyvirt.errors import InvalidConfigError

Element = etree._Element

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


def find_path(el: Element, path: str) -> Element | None:
    cur: Element | None = el
    for part in path.split("/") if path else ():
        assert cur is not None
        cur = cur.find(part)
        if cur is None:
            return None
    return cur


def line_indent(el: Element) -> str | None:
    """The whitespace that starts ``el``'s line, or None when the document is not indented."""
    prev = el.getprevious()
    before = prev.tail if prev is not None else None
    if prev is None:
        parent = el.getparent()
        before = parent.text if parent is not None else "\n"
    if before is None or "\n" not in before or before.strip():
        return None
    return before.rsplit("\n", 1)[1]


def reindent(el: Element, indent: str, step: str = "  ") -> None:
    if len(el) == 0 or (el.text is not None and el.text.strip()):
        return
    el.text = "\n" + indent + step
    for sub in el:
        sub.tail = "\n" + indent + step
        reindent(sub, indent + step, step)
    el[-1].tail = "\n" + indent


def tag_of(el: Element) -> str | None:
    return el.tag if isinstance(el.tag, str) else None


def insert_element(parent: Element, child: Element, order: Sequence[str] = ()) -> None:
    """Insert ``child`` into ``parent`` at its place in ``order``, keeping the indentation."""
    pos = len(parent)
    if child.tag in order:
        rank = order.index(str(child.tag))
        for i, sib in enumerate(parent):
            tag = tag_of(sib)
            if tag in order and order.index(str(tag)) > rank:
                pos = i
                break
    if len(parent) == 0:
        own = line_indent(parent)
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
    indent = line_indent(child)
    if indent is not None:
        reindent(child, indent)


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


def prune(el: Element, stop: Element) -> None:
    """Remove ``el`` and its ancestors below ``stop`` while they are left empty."""
    cur: Element | None = el
    while cur is not None and cur is not stop:
        if len(cur) or cur.attrib or (cur.text and cur.text.strip()):
            return
        parent = cur.getparent()
        remove_element(cur)
        cur = parent


def to_string(el: Element) -> str:
    """Serialize an element as libvirt formats XML, without an XML declaration.

    Attribute values are in single quotes (``<source file='/x.img'/>``; a ``'`` in a value is
    written ``&apos;``, a ``"`` stays literal) and elements that hold only elements are
    indented by two spaces a level, whatever the input's layout; text is kept as it is. A
    document root is serialized with its surrounding comments and processing instructions.
    This is the one serializer of every XML pyvirt prints or stores.
    """
    out: list[str] = []
    if el.getparent() is None:
        before = list(el.itersiblings(preceding=True))
        for node in reversed(before):
            _node(node, out, 0, {})
            out.append("\n")
        _node(el, out, 0, {})
        for node in el.itersiblings():
            out.append("\n")
            _node(node, out, 0, {})
    else:
        _node(el, out, 0, {})
    return "".join(out)


_INDENT = "  "
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "'": "&apos;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
    }
)


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _qname(tag: str, nsmap: dict[str | None, str], *, attribute: bool = False) -> str:
    if not tag.startswith("{"):
        return tag
    uri, local = tag[1:].split("}", 1)
    if uri == "http://www.w3.org/XML/1998/namespace":
        return f"xml:{local}"
    for prefix, known in nsmap.items():
        if known == uri and (prefix is not None or not attribute):
            return f"{prefix}:{local}" if prefix else local
    return local  # pragma: no cover - lxml always maps a namespace it parsed


def _node(node: Element, out: list[str], level: int, inherited: dict[str | None, str]) -> None:
    if isinstance(node, etree._Comment):
        out.append(f"<!--{node.text or ''}-->")
        return
    if isinstance(node, etree._ProcessingInstruction):
        target = str(node.target)
        out.append(f"<?{target} {node.text}?>" if node.text else f"<?{target}?>")
        return
    if isinstance(node, etree._Entity):
        out.append(f"&{node.name};")
        return
    nsmap: dict[str | None, str] = dict(node.nsmap)
    local = etree.QName(node).localname
    tag = f"{node.prefix}:{local}" if node.prefix else local
    parts = [tag]
    for name, value in node.attrib.items():
        key = _qname(str(name), nsmap, attribute=True)
        parts.append(f"{key}='{str(value).translate(_ATTR_ESCAPES)}'")
    for prefix, uri in nsmap.items():
        if inherited.get(prefix) != uri:
            attr = f"xmlns:{prefix}" if prefix else "xmlns"
            parts.append(f"{attr}='{uri.translate(_ATTR_ESCAPES)}'")
    children = list(node)
    if not children and not node.text:
        out.append(f"<{' '.join(parts)}/>")
        return
    out.append(f"<{' '.join(parts)}>")
    if children and _blank(node.text) and all(_blank(c.tail) for c in children):
        inner = "\n" + _INDENT * (level + 1)
        for child in children:
            out.append(inner)
            _node(child, out, level + 1, nsmap)
        out.append("\n" + _INDENT * level)
    else:
        out.append((node.text or "").translate(_TEXT_ESCAPES))
        for child in children:
            _node(child, out, level + 1, nsmap)
            out.append((child.tail or "").translate(_TEXT_ESCAPES))
    out.append(f"</{tag}>")


def copy_element(el: Element) -> Element:
    """A deep copy of ``el``; a document root is copied with its whole document."""
    if el.getparent() is None:
        return copy.deepcopy(el.getroottree()).getroot()
    new = copy.deepcopy(el)
    new.tail = None
    return new
