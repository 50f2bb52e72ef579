"""Exit codes of ``m3sync`` (DESIGN.md, "Contracts"): other tools script against them.

When a run has several outcomes, the first of 4, 5, 2, 3 that applies wins: the most
transient first, so a script that retries on 4 sees the rest on the next run; then what needs
a developer (5), then what needs different input (2), then what needs an accountant (3).
"""

EXIT_OK = 0  # every settlement posted, dry run, skipped as duplicate, or submitted (M3's GL batch
#                        job has not booked it yet; the next run confirms it, a note on stderr says so)
EXIT_INVALID = 2  # invalid input or configuration: the message on stderr names what and where
EXIT_HELD = 3  # at least one settlement held (a gate, or M3 refused a voucher)
EXIT_UNREACHABLE = 4  # M3 or Amazon (or Prefect's API) unreachable, or rejecting the credentials
EXIT_FAILED = 5  # an unexpected error in m3sync itself: the message names it, the log has the traceback
