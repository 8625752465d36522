package churn

import "time"

// Handled exposes the handled-file reader to the external tests.
type Handled = handled

var NewHandled = newHandled

func (h *handled) Read() error                                { return h.read() }
func (h *handled) Pending(p int32, commit int64) int          { return h.pending(p, commit) }
func (h *handled) Lost(final map[int32]int64) (int, []string) { return h.lost(final) }
func (h *handled) Distinct(p int32) int64                     { return h.distinct[p] }
func (h *handled) ByMember(m int) int                         { return h.byMember[m] }
func (h *handled) Duplicates() int                            { return h.duplicates() }
func (h *handled) Progressed(cfg Config, done int) bool       { return h.progressed(cfg, done) }

// Events exposes the run's event record.
type Events = events

func NewEvents(grace time.Duration) *Events { return &events{grace: grace} }

func (ev *events) Begin(kind string, at time.Duration, bound int) int {
	return ev.begin(kind, at, bound)
}
func (ev *events) End(i int, at time.Duration, bound int)    { ev.end(i, at, bound) }
func (ev *events) Widen(now time.Duration, bound func() int) { ev.widen(now, bound) }
func (ev *events) Charge(dups []time.Duration)               { ev.charge(dups, 0) }
func (ev *events) Share()                                    { ev.share() }
func (ev *events) List() []Event                             { return ev.list }
