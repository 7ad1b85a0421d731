"""The delivery queue: from a built event to deliveries sent on time (schedule/outbox stage).

`schedule` reads the schedule file and the build's manifests; `plan` turns them into
deliveries in the state store; `approval` records who signed off which sha256s; `actions`
are the `aspdigest schedule …` verbs and the status views; `runner` is `aspdigest run`, which
claims and delivers each approved delivery once; `rehearsal` replays a day against local
sinks. Every module here is handed a `aspdigest.store.Store`; none opens one of its own
except the runner's `serve` and the rehearsal's scratch store.
"""
