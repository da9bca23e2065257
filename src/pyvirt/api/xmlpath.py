"""XPath over an XML document's text, as virsh's ``--xpath`` and ``--wrap`` print it (for the
``*-dumpxml`` commands of every object, not only domains)."""

from __future__ import annotations

from pyvirt.errors import InvalidConfigError

__all__ = ["select"]


def select(xml: str, expr: str, *, wrap: bool = False) -> str:
    """The nodes of *xml* matching XPath *expr*, serialized one after another (strings and
    numbers as text), each on its line; *wrap* puts them in one ``<nodes>`` element.

    :raises InvalidConfigError: *xml* is not XML, or *expr* is not an XPath expression
    """
    from lxml import etree  # lazy

    try:
        root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as err:
        raise InvalidConfigError(f"cannot apply --xpath: the output is not XML ({err})") from None
    try:
        found = root.xpath(expr)
    except etree.XPathError as err:
        raise InvalidConfigError(f"invalid xpath '{expr}': {err}") from None
    items = found if isinstance(found, list) else [found]
    out = []
    for node in items:
        if isinstance(node, etree._Element):
            node.tail = None
            out.append(etree.tostring(node, encoding="unicode").rstrip())
        else:
            out.append(str(node))
    if wrap:
        return "<nodes>\n" + "".join(f"{item}\n" for item in out) + "</nodes>\n"
    return "".join(f"{item}\n" for item in out)
