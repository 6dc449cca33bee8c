"""One module per `payrule` subcommand, found by name: each defines NAME, HELP, DESCRIPTION,
`add_arguments(parser)` and `run(args) -> exit status`. A new subcommand is a new module here."""
