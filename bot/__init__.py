"""Everything that talks to people: the CLI, the command grammar, the inbound
pipeline (``bot.inbound``) and one adapter subpackage per chat platform."""
