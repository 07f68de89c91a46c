"""The garbage collector and the GUI loop: CPython's full collections walk every tracked
object, and a tray app that has imported Qt, the supervisor and a window holds some hundreds
of thousands of them, so a full pass stalls the GUI loop for 100 ms and more. What start-up
made lives as long as the app: :func:`settle` moves it out of the collector's sight
(``gc.freeze``, as CPython's docs advise for long-lived processes), so later passes walk only
what was made since. Cycles made after that are still collected.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Freeze every object tracked now: call it once the app (or a window that lives as long
    as it) is built. No collection first: that would be the very stall this avoids, and the
    little garbage frozen with the rest is made once."""
    gc.freeze()
