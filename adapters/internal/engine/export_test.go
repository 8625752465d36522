package engine

import (
	"context"
	"time"
)

// Tick runs one turn of the session's commit loop as if its ticker fired
// at now: refresh hooks, watchdogs, periodic commit.
func (s *Session[M]) Tick(now time.Time) { s.tick(context.Background(), now) }
