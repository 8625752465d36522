package churn

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
