"""Fakes of the chat platforms' HTTP APIs: real servers on 127.0.0.1, port 0."""
