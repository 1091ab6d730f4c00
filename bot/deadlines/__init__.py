"""Time: working days on the statutory calendar, deadline policies and the stage clock, and the sweeps that act on due rows."""
