"""XML from senders (an extension's geometry files): size, nesting and entities bounded.

defusedxml refuses document type declarations, entities and external references (the
"billion laughs" and external-entity attacks); the depth is counted on the parser's
start and end events as it reads, so a document nested deeper than the limit is refused
before its tree is complete, and the size is checked before anything is parsed.
"""

from __future__ import annotations

import io
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

from hounsfield.untrusted import InputRefused


def parse_xml(data: bytes, *, max_bytes: int, max_depth: int) -> Element:
    """The document's root element; InputRefused naming the problem or the limit."""
    if len(data) > max_bytes:
        raise InputRefused(
            f"XML document exceeds {max_bytes} bytes", limit="Limits.XmlBytes", too_large=True
        )
    depth = 0
    root: Element | None = None
    try:
        for event, element in defusedxml.ElementTree.iterparse(
            io.BytesIO(data), events=("start", "end"), forbid_dtd=True
        ):
            if event == "start":
                depth += 1
                root = element if root is None else root
                if depth > max_depth:
                    raise InputRefused(
                        f"XML nested deeper than {max_depth} levels", limit="Limits.XmlDepth"
                    )
            else:
                depth -= 1
    except DefusedXmlException as error:
        raise InputRefused(f"XML with a DTD or entities is not accepted ({error})") from error
    except ParseError as error:
        raise InputRefused(f"malformed XML: {error}") from error
    if root is None:
        raise InputRefused("malformed XML: no element")
    return root
