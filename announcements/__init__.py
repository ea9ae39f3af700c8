"""The platform-neutral domain: who may say what to whom, and what happened.

This package never imports a chat SDK. Adapters in ``bot`` turn platform
requests into the neutral types of ``announcements.types`` and render the
``OutboundMessage`` values it produces.
"""
