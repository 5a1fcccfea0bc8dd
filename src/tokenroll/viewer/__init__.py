"""The trajectory viewer: one self-contained HTML page of a run, and PNG figures for reports.

`build_page(run)` gives the HTML of a run directory loaded with `load_run`; `write_page`
writes it. `tokenroll view` is the command; `tokenroll.viewer.browser` (the `[viewer]`
extra) drives headless Chromium for the PNG export.
"""

from tokenroll.viewer.page import build_page, write_page
from tokenroll.viewer.rundir import RunDir, RunDirError, load_run

__all__ = ["RunDir", "RunDirError", "build_page", "load_run", "write_page"]
