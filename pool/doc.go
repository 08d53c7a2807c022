// Package pool holds what the gateway knows about its upstream targets:
// the targets of each service, the balancers that choose one per request,
// active and passive health checks and per-target circuit breakers. It
// does not hold connections: the proxy forwards through proxy/transport,
// one transport per target address, kept across reloads by the proxy's
// upstreams registry (proxy/upstreams.go).
//
// # Lifetimes
//
// A Registry lives as long as the process. It owns the target state
// (health, circuit breaker, in-flight count, gauges, active checker),
// reference counted and keyed by (service name, target URL), so a reload
// that keeps a target keeps what was learnt about it.
//
// A *Service is built per config snapshot by Registry.NewService (no
// goroutines, no I/O: `weir validate` may build and drop it), started with
// Start (active health checks), used by Pick for each request and closed
// with Close once the snapshot's in-flight requests are done. Building the
// new snapshot's Service before closing the old one is what carries state
// across a reload: references never drop to zero for a target that is
// kept. A change of targets (a config edit, the admin API, DNS discovery)
// is a new snapshot, so a Service's member list never changes.
//
// # Request path
//
// The proxy calls Pick, then Member.Begin, forwards through the member's
// transport (looked up by Member.URL) and reports the outcome with
// Member.End. Pick, Begin and End do not allocate and take no locks.
package pool
