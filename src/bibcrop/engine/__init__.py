"""Engines that map a per-item worker over a list of items (photos) beyond one process.

:mod:`bibcrop.engine.ray_pool` is the Ray one: Ray Data over the item list with an actor
pool, each actor building its worker once (a model loaded once per actor), one result per
item, retried when a worker process dies. The photo stages (``crop.engine=ray``) use it;
``local`` stays each stage's own loop.
"""
