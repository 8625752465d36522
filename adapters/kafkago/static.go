package kafkago

// This file holds static membership (WithInstanceID, KIP-345): the
// instance id goes with the join, the sync, the heartbeats and the commits
// (group.go, consumer.go); Run's end does not leave the group; and a member
// the coordinator fenced (FENCED_INSTANCE_ID: another member joined with
// its id) drops its partitions without a commit and ends Run with
// ErrFenced instead of joining again, which would fence the other member
// in turn.

import (
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// fencedBy reports whether err says that another member took this
// member's instance id.
func fencedBy(err error) bool { return errors.Is(err, kafka.FencedInstanceID) }

// fenced stops Run with ErrFenced naming the instance id: runCtx ends
// (no rejoin) and the generation running drops its partitions without a
// commit (see generation). Safe to call more than once, from any
// goroutine; call it before ending the generation.
func (g *groupRun) fenced(err error) {
	g.isFenced.Store(true)
	g.fail(fmt.Errorf("%w: another member joined group %q with instance id %q: %w",
		ErrFenced, g.c.group, g.c.cfg.instanceID, err))
}
