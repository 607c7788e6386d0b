"""Static HTML pages to look at data and results: no server, no network (inline SVG plots, local videos).

:mod:`~manip.data.view.html` builds pages, :mod:`~manip.data.view.svg` draws plots,
:mod:`~manip.data.view.store_page` writes ``manip data view``'s pages for an episode store.
"""
