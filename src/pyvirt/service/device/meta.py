"""``desc`` and ``metadata``: a domain's ``<title>``, ``<description>`` and ``<metadata>``.

Both change the running domain's live definition (``--live``), the persistent one
(``--config``) or both, with the usual affect rules; reading picks the live definition of a
running domain unless ``config`` is given. ``<metadata>`` holds one element per namespace
URI, written with the prefix ``key`` (libvirt's rule: an application owns its namespace).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, NotFoundError

if TYPE_CHECKING:
    from lxml.etree import _Element as Element

    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast (lxml, QMP).


def _read(mgr: DomainManager, ident: str, *, config: bool) -> Domain:
    name = mgr.resolve(ident)
    if config or mgr.live_record(name, cleanup=False) is None:
        return mgr.definition(name, inactive=True)
    return mgr.definition(name)


def _change(
    mgr: DomainManager,
    ident: str,
    edit: Callable[[Domain], None],
    *,
    live: bool,
    config: bool,
    current: bool,
) -> None:
    name = mgr.resolve(ident)
    with mgr.locked(name):
        scope = mgr.affect(name, live=live, config=config, current=current)
        if scope.live:
            dom = mgr.live_definition(name)
            edit(dom)
            mgr.save_live(name, dom)
        if scope.config:
            dom, rev = mgr.read_config(name)
            edit(dom)
            mgr.write_config(name, dom, rev)


def get_desc(mgr: DomainManager, ident: str, *, title: bool = False, config: bool = False) -> str:
    """The domain's description (``title``: its title); empty when it has none."""
    dom = _read(mgr, ident, config=config)
    return (dom.title if title else dom.description) or ""


def set_desc(
    mgr: DomainManager,
    ident: str,
    text: str,
    *,
    title: bool = False,
    live: bool = False,
    config: bool = False,
    current: bool = False,
) -> None:
    """Set (empty: remove) the domain's description or, with ``title``, its title.

    :raises InvalidConfigError: a title with a line break (libvirt's rule)
    """
    if title and "\n" in text:
        raise InvalidConfigError("a domain title cannot contain a newline", hint="use one line")

    def edit(dom: Domain) -> None:
        if title:
            dom.title = text or None
        else:
            dom.description = text or None

    _change(mgr, ident, edit, live=live, config=config, current=current)


def _meta_root(dom: Domain, create: bool) -> Element | None:
    from lxml import etree  # lazy

    from pyvirt.model.xmltree import insert_element  # lazy

    root = dom.element.find("metadata")
    if root is None and create:
        root = etree.Element("metadata")
        insert_element(dom.element, root, type(dom).ORDER)
    return root


def _owned(root: Element | None, uri: str) -> list[Element]:
    if root is None:
        return []
    return [el for el in root if isinstance(el.tag, str) and el.tag.startswith(f"{{{uri}}}")]


def get_metadata(mgr: DomainManager, ident: str, uri: str, *, config: bool = False) -> str:
    """The ``<metadata>`` element of namespace *uri*, as XML.

    :raises NotFoundError: the domain has none
    """
    from pyvirt.model.xmltree import to_string  # lazy

    found = _owned(_meta_root(_read(mgr, ident, config=config), False), uri)
    if not found:
        raise NotFoundError(
            "metadata not found: Requested metadata element is not present",
            hint=f"set it with: metadata DOMAIN {uri} --key PREFIX --set XML",
        )
    return to_string(found[0])


def _namespaced(xml: str, uri: str, key: str) -> Element:
    """*xml* with every element without a namespace moved into *uri*, prefixed *key*."""
    from lxml import etree  # lazy

    from pyvirt.model.xmltree import parse_xml  # lazy

    src = parse_xml(xml, what="metadata XML")

    def rebuild(el: Element, top: bool) -> Element:
        tag = str(el.tag)
        qname = tag if tag.startswith("{") else f"{{{uri}}}{tag}"
        attrs = {str(k): str(v) for k, v in el.attrib.items()}
        new = etree.Element(qname, attrs, nsmap={key: uri} if top else None)
        new.text, new.tail = el.text, None if top else el.tail
        for sub in el:
            if isinstance(sub.tag, str):
                new.append(rebuild(sub, False))
        return new

    return rebuild(src, True)


def set_metadata(
    mgr: DomainManager,
    ident: str,
    uri: str,
    *,
    key: str | None = None,
    xml: str | None = None,
    live: bool = False,
    config: bool = False,
    current: bool = False,
) -> None:
    """Set (``xml``) or remove (``xml`` None) the metadata element of namespace *uri*.

    :raises InvalidConfigError: setting without a ``key``, or a bad prefix
    """
    new: Element | None = None
    if xml is not None:
        if not key or not key.isidentifier():
            raise InvalidConfigError(
                "setting metadata needs a namespace prefix", hint="add --key PREFIX (e.g. app1)"
            )
        new = _namespaced(xml, uri, key)

    def edit(dom: Domain) -> None:
        from pyvirt.model.xmltree import copy_element  # lazy

        root = _meta_root(dom, new is not None)
        for old in _owned(root, uri):
            assert root is not None
            root.remove(old)
        if new is not None and root is not None:
            root.append(copy_element(new))
        elif root is not None and len(root) == 0:
            dom.element.remove(root)

    _change(mgr, ident, edit, live=live, config=config, current=current)
