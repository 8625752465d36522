package engine

import (
	"context"
	"time"
)

// Tick runs one turn of the session's commit loop as if its ticker fired
// at now: refresh hooks, watchdogs, periodic commit.
func (s *Session[M]) Tick(now time.Time) { s.tick(context.Background(), now) }

// RevokeAt is Revoke with its budget measured from start instead of the
// call, so that a test knows the exact deadline the commit must see.
func (s *Session[M]) RevokeAt(ctx context.Context, start time.Time, tps ...TopicPartition) {
	s.release(ctx, start, s.lookup(tps), false)
}
