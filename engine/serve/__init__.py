"""`ivrflow serve`: flows answering real calls from FreeSWITCH's outbound Event Socket.

See docs/freeswitch.md.  `config` (the YAML file), `flows` (loading, validation, hot reload),
`routing` (which flow a call runs, caller ID trust), `server` (one task per call, call
records, graceful shutdown), `experts` (calling an expert's own phone into a room),
`metrics` + `http` (Prometheus endpoint), `logs` (JSON lines with the call UUID), `cli`.
Nothing is imported here, so `ivrflow` commands other than `serve` do not pay for it.
"""
