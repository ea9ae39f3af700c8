"""Everything that talks to people: the CLI, the command grammar, the router
and one adapter subpackage per chat platform."""
