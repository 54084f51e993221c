"""The `avloc` command line: one module per subcommand, each defining
`main(argv: list[str]) -> int`; commands parse arguments and call the library."""
