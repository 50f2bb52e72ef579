"""Exit codes of ``m3sync`` (DESIGN.md, "Contracts"): other tools script against them."""

EXIT_OK = 0            # every settlement posted, dry run, or skipped as duplicate
EXIT_INVALID = 2       # invalid input or configuration: the message names what and where
EXIT_HELD = 3          # at least one settlement held by a gate
EXIT_UNREACHABLE = 4   # M3 or Amazon unreachable or rejecting
