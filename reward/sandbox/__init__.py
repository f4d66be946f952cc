"""Where programs run: the fork server, one run's lifecycle, the child body, preload, the audit guard,
the OS isolation layers and tamper snapshots."""
