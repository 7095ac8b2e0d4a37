"""Computed styles shared between renders of Herald's invoice template.

WeasyPrint computes an element's style property by property from the cascade:
about a quarter of a render's CPU, and the same work for every invoice, since
every invoice is the same template against the same stylesheets. WeasyPrint
already gives elements of one document a single computed style when their
parent's style and their matched declarations are the same; this module
extends that sharing to every document the process renders.

A computed style depends only on its parent's computed style, its cascaded
declarations, its pseudo-element and the base URL (plus the font configuration,
which is one per process here); it holds no reference to its element. So the
key is the parent style's identity and the cascaded declarations: by value
where a value can be hashed, by identity otherwise. The cache keeps every
keyed object alive (a style holds its parent and its cascaded declarations),
so no identity can be reused for another object while its entry exists.
Declarations must come from stylesheets that live longer than one render for
anything to be shared: the template's stylesheet is parsed once per process,
and the small per-seller ``<style>`` is lifted out of each document and parsed
once per distinct text (:mod:`einvoice.pdf.render`).

Only documents that ask for it (``shares_styles = True`` on the HTML object)
share; any other WeasyPrint use in the process computes styles as usual.
"""

from __future__ import annotations

from xml.etree import ElementTree

import weasyprint.css

__all__ = ["STYLE_CACHE_ENTRIES", "install", "trim_cache"]

#: Styles the cache may hold before it is emptied. A document of the template adds
#: none once its kind has been seen (about 75 styles for a 10-line invoice, a few more
#: for a status badge, a notice or another seller's colours).
STYLE_CACHE_ENTRIES = 4096
_styles: dict[tuple, weasyprint.css.ComputedStyle] = {}
_Base = weasyprint.css.StyleFor


class _SharingStyleFor(_Base):
    """WeasyPrint's per-document styles, taking a computed style from the shared cache."""

    def __init__(self, html, *args, **kwargs) -> None:
        self._shares = getattr(html, "shares_styles", False)
        super().__init__(html, *args, **kwargs)

    def set_computed_styles(self, element, parent, root=None, pseudo_type=None,
                            base_url=None, target_collector=None) -> None:
        # Page boxes are keyed by page type, which is not hashable; they are few.
        if not (self._shares and isinstance(element, ElementTree.Element)):
            super().set_computed_styles(element, parent, root, pseudo_type, base_url,
                                        target_collector)
            return
        computed = self.get_computed_styles()
        cascaded = self.get_cascaded_styles().get((element, pseudo_type), {})
        parent_style = None if parent is None else computed[parent, None]
        key = (id(parent_style), pseudo_type, base_url, _declarations_key(cascaded))
        style = _styles.get(key)
        if style is None:
            super().set_computed_styles(element, parent, root, pseudo_type, base_url,
                                        target_collector)
            _styles[key] = computed[element, pseudo_type]
            return
        computed[element, pseudo_type] = style
        if target_collector and style["anchor"]:
            target_collector.collect_anchor(style["anchor"])


def _declarations_key(cascaded: dict) -> tuple:
    items = []
    for name, (value, weight) in cascaded.items():
        try:
            hash(value)
        except TypeError:
            value = id(value)  # the cached style's cascade keeps the value alive
        items.append((name, value, weight))
    return tuple(items)


def install() -> None:
    """Make WeasyPrint build its styles through the sharing subclass (once per process).

    WeasyPrint looks ``StyleFor`` up in its ``css`` module for every document, so
    that is where the subclass goes; documents without ``shares_styles`` behave
    exactly as before.
    """
    weasyprint.css.StyleFor = _SharingStyleFor


def trim_cache() -> None:
    """Empty the cache when it has grown past :data:`STYLE_CACHE_ENTRIES`.

    Called between renders; styles of the renders before stay valid for as long
    as their documents are used.
    """
    if len(_styles) > STYLE_CACHE_ENTRIES:
        _styles.clear()
