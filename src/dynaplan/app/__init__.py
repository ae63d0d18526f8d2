"""The command line and its commands (train, eval, compare, plot, bench, sweep, report).
Library code never imports this package."""
