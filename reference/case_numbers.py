"""The case number's form, in one place for every reader of it: ``MS`` + the day (China time, 8 digits) + ``-`` +
the day's serial, written with at least four digits (``MS20261206-0007``) and more once a day passes 9,999 cases
(``MS20261206-10000``). A reader that took four digits would read case 10000 as case 1000."""

from __future__ import annotations

import re

#: the serial: four digits at least (zero-padded), up to six (a million cases a day), never followed by a digit
SERIAL = r"\d{4,6}(?!\d)"
#: a case number as the system writes it
CASE_NO = re.compile(rf"MS\d{{8}}-{SERIAL}")
