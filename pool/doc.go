// Package pool holds the upstream side of the gateway: the targets of each
// service, their pooled keep-alive connections, the balancers that choose
// one per request, active and passive health checks, per-target circuit
// breakers and the runtime discovery hooks (AddTarget, RemoveTarget).
//
// # Lifetimes
//
// A Registry lives as long as the process. It owns two kinds of shared
// state, both reference counted:
//
//   - connection pools (*fasthttp.HostClient), keyed by scheme, host:port
//     and client settings, so a config reload that keeps a target keeps its
//     warm connections;
//   - target state (health, circuit breaker, in-flight count, gauges), keyed
//     by (service name, target URL), so a reload keeps what was learnt about
//     a target.
//
// A *Service is built per config snapshot by Registry.NewService (no
// goroutines, no I/O: `weir validate` may build and drop it), started with
// Start (active health checks), used by Pick for each request and closed
// with Close once the snapshot's in-flight requests are done. Building the
// new snapshot's Service before closing the old one is what carries state
// across a reload: references never drop to zero for a target that is kept.
//
// # Request path
//
// The proxy calls Pick, then Member.Begin, forwards with
// Member.Client().DoDeadline and reports the outcome with Member.End. Pick,
// Begin and End do not allocate and take no locks; the member list is an
// immutable snapshot behind an atomic pointer that discovery replaces
// (copy on write).
package pool
