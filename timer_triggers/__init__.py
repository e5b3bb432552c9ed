"""timer_triggers: functions started by a schedule (one blueprint per concern)."""
