"""Objects arriving into the archive: checked for corruption on every road, then stored.

A PACS keeps every valid object a modality sends. What our capabilities think of an
object decides what is done with it later (processed, analysed, routed), never whether
it is kept: only corrupt objects (cut short, pixel data shorter than its header says,
nesting no real object has) are refused, and the sender is told on every road.
"""
