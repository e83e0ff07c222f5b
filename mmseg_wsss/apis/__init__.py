"""High-level entry points that use the models (above ``models`` in the
package layering: ``utils``, ``datasets`` and ``evaluation`` sit below it and
never import it).

``mmseg_wsss.apis.benchmark`` is the engine of ``tools/benchmark.py``; it is
imported on demand (it pulls in the flop counter), not here.
"""
