"""SIP test calls and OPTIONS through a trunk, made by SIPp (Debian's `sip-tester`), the
standard SIP test tool: we generate its scenario, run one process per call under a cap, and
read what happened from its message trace. No SIP is parsed or built here beyond that."""
