"""One module per `avloc` subcommand; each defines `main(argv: list[str]) -> int`."""
