"""The labels every Docker object of a trial carries: what tear-down and `gatecrash clean`
find it by (an object whose creation was interrupted has its labels already)."""

RUN_LABEL, SLOT_LABEL, ROLE_LABEL = "org.gatecrash.run", "org.gatecrash.slot", "org.gatecrash.role"
TRIAL_LABEL, PID_LABEL = "org.gatecrash.trial", "org.gatecrash.pid"
