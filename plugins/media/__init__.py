"""Helpers for the media codecs (``image_codec``, ``audio_codec``): file-layout parsers and signal coders.

Kept apart so the plugin modules stay short; nothing here knows about archives.
"""
