"""Prompts and speech: catalogs, spoken formatting, TTS backends, cache, runtime resolution.

Modules are imported directly (``engine.prompts.speak``, ``.catalog``, ``.check``, ``.tts``,
``.cache``, ``.media``, ``.build``, ``.cli``); this package imports nothing eagerly so that
``engine.flow`` and ``engine.templating`` can use it without import cycles.
"""
