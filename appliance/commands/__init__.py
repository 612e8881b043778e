"""The pocketcheck subcommands; cli.py only wires them."""
